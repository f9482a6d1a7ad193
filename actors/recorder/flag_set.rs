//! The flag set at the Recorder: its copy of the flags, replaced after each check-in
//! (`CheckinCompleted`) and published to subscribers and [`FlagReader`](crate::FlagReader)s,
//! and the messages about the set as a whole (reading it, waiting for a check-in, asking for
//! one, subscribing).

use std::sync::Arc;

use actix::prelude::*;

use super::Recorder;
use crate::error::WaitForCheckinError;
use crate::features::FeatureSet;
use crate::messages::*;
use crate::supervision::supervised;

impl Handler<GetFeatures> for Recorder {
    type Result = MessageResult<GetFeatures>;

    fn handle(&mut self, _msg: GetFeatures, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.features.clone())
    }
}

impl Handler<WaitForCheckin> for Recorder {
    type Result = ResponseFuture<Result<Arc<FeatureSet>, WaitForCheckinError>>;

    fn handle(&mut self, msg: WaitForCheckin, _ctx: &mut Context<Self>) -> Self::Result {
        if self.pipeline.is_none() {
            return Box::pin(async { Err(WaitForCheckinError::Disabled) });
        }
        let mut checkins = self.checkins_tx.subscribe();
        let features = self.features_tx.subscribe();
        Box::pin(async move {
            match tokio::time::timeout(msg.timeout, checkins.wait_for(|n| *n > 0)).await {
                Ok(Ok(_)) => Ok(features.borrow().clone()),
                Ok(Err(_)) => Err(WaitForCheckinError::Stopped),
                Err(_) => Err(WaitForCheckinError::Timeout(msg.timeout)),
            }
        })
    }
}

impl Handler<RefreshConfiguration> for Recorder {
    type Result = ();

    fn handle(&mut self, _msg: RefreshConfiguration, ctx: &mut Context<Self>) {
        supervised(self, ctx, |act, _| {
            if let Some(p) = &act.pipeline {
                p.configuration.do_send(RefreshNow);
            }
        });
    }
}

impl Handler<SubscribeFeatures> for Recorder {
    type Result = MessageResult<SubscribeFeatures>;

    fn handle(&mut self, _msg: SubscribeFeatures, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(FeatureSubscription::new(self.features_tx.subscribe()))
    }
}

impl Handler<CheckinCompleted> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: CheckinCompleted, ctx: &mut Context<Self>) {
        supervised(self, ctx, |act, _| {
            act.features = msg.features.clone();
            if msg.changed {
                act.features_tx.send_replace(msg.features);
            }
            act.checkins_tx.send_modify(|n| *n += 1);
        });
    }
}

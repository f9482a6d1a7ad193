//! A real DNS server for the tests, run in-process: hickory's authoritative server on a loopback
//! port (UDP and TCP), serving SRV and A records from memory. The records can be changed while it
//! runs ([`Dns::set_zone`]), and every query is logged so tests can count lookups.
//!
//! One zone at the root holds every record, so a name the zone does not have is answered
//! NXDOMAIN at once (there is nowhere to forward to).

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::rr::rdata::{A, SOA, SRV};
use hickory_server::proto::rr::{LowerName, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use tokio::net::{TcpListener, UdpSocket};

pub use hickory_server::proto::rr::Name;

/// A name parsed from its text form (`node1.example.test`), always fully qualified.
pub fn name(text: &str) -> Name {
    let mut name = Name::from_str(text).expect("a valid DNS name");
    name.set_fqdn(true);
    name
}

/// One SRV record: `name` → `target:port` with a priority and weight.
#[derive(Clone, Debug)]
pub struct Srv {
    pub name: String,
    pub target: Name,
    pub port: u16,
    pub priority: u16,
    pub weight: u16,
}

impl Srv {
    pub fn new(name: &str, target: &str, port: u16, priority: u16, weight: u16) -> Srv {
        Srv::with_target(name, self::name(target), port, priority, weight)
    }

    /// A record whose target is given as a [`Name`], so it can hold any label bytes.
    pub fn with_target(name: &str, target: Name, port: u16, priority: u16, weight: u16) -> Srv {
        Srv {
            name: name.into(),
            target,
            port,
            priority,
            weight,
        }
    }
}

/// What the server answers.
#[derive(Clone, Debug, Default)]
pub struct Zone {
    pub srv: Vec<Srv>,
    /// Host name → IPv4 address.
    pub hosts: Vec<(String, Ipv4Addr)>,
    /// TTL of every answer, and of the negative answers (the SOA minimum), in seconds.
    pub ttl: u32,
}

impl Zone {
    fn records(&self) -> Vec<Record> {
        let soa = SOA::new(
            name("ns.example.test"),
            name("hostmaster.example.test"),
            1,
            3600,
            600,
            86400,
            self.ttl,
        );
        let mut records = vec![Record::from_rdata(Name::root(), self.ttl, RData::SOA(soa))];
        for srv in &self.srv {
            let rdata = SRV::new(srv.priority, srv.weight, srv.port, srv.target.clone());
            records.push(Record::from_rdata(
                name(&srv.name),
                self.ttl,
                RData::SRV(rdata),
            ));
        }
        for (host, ip) in &self.hosts {
            records.push(Record::from_rdata(name(host), self.ttl, RData::A(A(*ip))));
        }
        records
    }
}

type QueryLog = Arc<Mutex<Vec<(RecordType, LowerName)>>>;

/// The catalog (one in-memory zone at the root), with every query logged before it is answered.
struct Logging {
    catalog: Catalog,
    log: QueryLog,
}

#[async_trait::async_trait]
impl RequestHandler for Logging {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        if let Ok(info) = request.request_info() {
            self.log
                .lock()
                .unwrap()
                .push((info.query.query_type(), info.query.name().clone()));
        }
        self.catalog
            .handle_request::<R, T>(request, response_handle)
            .await
    }
}

pub struct Dns {
    addr: SocketAddr,
    zone: Arc<InMemoryZoneHandler>,
    server: Option<Server<Logging>>,
    log: QueryLog,
}

/// A UDP socket and a TCP listener on the same free loopback port.
async fn bind() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("a free loopback UDP port");
        let addr = udp.local_addr().expect("a bound UDP socket has an address");
        // The same port may be taken for TCP: then another pair.
        if let Ok(tcp) = TcpListener::bind(addr).await {
            return (udp, tcp);
        }
    }
    panic!("no loopback port free for both UDP and TCP");
}

impl Dns {
    /// Starts a server answering `zone` on a free loopback port.
    pub async fn start(zone: &Zone) -> Dns {
        let handler: InMemoryZoneHandler =
            InMemoryZoneHandler::empty(Name::root(), ZoneType::Primary, AxfrPolicy::Deny);
        let handler = Arc::new(handler);
        let mut catalog = Catalog::new();
        catalog.upsert(
            LowerName::new(&Name::root()),
            vec![handler.clone() as Arc<dyn ZoneHandler>],
        );
        let log = QueryLog::default();
        let (udp, tcp) = bind().await;
        let addr = udp.local_addr().expect("a bound UDP socket has an address");
        let mut server = Server::new(Logging {
            catalog,
            log: log.clone(),
        });
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64);
        let dns = Dns {
            addr,
            zone: handler,
            server: Some(server),
            log,
        };
        dns.set_zone(zone).await;
        dns
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many queries of `record_type` (`"SRV"`, `"A"`, …) for `name` the server received.
    pub fn queries(&self, record_type: &str, name: &str) -> usize {
        let record_type = RecordType::from_str(record_type).expect("a record type");
        let name = LowerName::new(&self::name(name));
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, n)| *t == record_type && *n == name)
            .count()
    }

    /// Replaces every record with those of `zone`; the next query sees them.
    pub async fn set_zone(&self, zone: &Zone) {
        self.zone.records_mut().await.clear();
        for record in zone.records() {
            assert!(
                self.zone.upsert(record.clone(), 1).await,
                "record not taken: {record}"
            );
        }
    }

    /// Stops the server: lookups then time out or are refused.
    pub async fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.shutdown_gracefully().await;
        }
    }
}

//! Host facts that change while the process runs.

/// Facts that change; cheap to refresh (reads /proc on Linux), still blocking.
#[derive(Clone, Debug, PartialEq)]
pub struct VolatileFacts {
    /// Memory available for new allocations without swapping, in bytes.
    pub available_memory_bytes: u64,
    /// System load average over one minute.
    pub load_average_1m: Option<f64>,
    /// System load average over five minutes.
    pub load_average_5m: Option<f64>,
    /// System load average over fifteen minutes.
    pub load_average_15m: Option<f64>,
}

impl VolatileFacts {
    /// Reads the facts from the host. Blocks briefly on OS queries.
    pub fn gather() -> VolatileFacts {
        let mut system = sysinfo::System::new();
        system.refresh_memory();
        let (load_average_1m, load_average_5m, load_average_15m) = load_average();
        VolatileFacts {
            available_memory_bytes: system.available_memory(),
            load_average_1m,
            load_average_5m,
            load_average_15m,
        }
    }
}

/// `None` where the platform has no load average: sysinfo reports zeros there, which would be
/// indistinguishable from an idle host.
fn load_average() -> (Option<f64>, Option<f64>, Option<f64>) {
    if cfg!(windows) || !sysinfo::IS_SUPPORTED_SYSTEM {
        return (None, None, None);
    }
    let load = sysinfo::System::load_average();
    (finite(load.one), finite(load.five), finite(load.fifteen))
}

/// A NaN or infinite value cannot be sent as JSON, so it is reported as unknown.
fn finite(value: f64) -> Option<f64> {
    value.is_finite().then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_are_unknown() {
        assert_eq!(finite(f64::NAN), None);
        assert_eq!(finite(f64::INFINITY), None);
        assert_eq!(finite(0.25), Some(0.25));
    }

    #[test]
    fn gather_reads_this_host() {
        let facts = VolatileFacts::gather();
        if cfg!(target_os = "linux") {
            assert!(facts.available_memory_bytes > 0);
            for load in [
                facts.load_average_1m,
                facts.load_average_5m,
                facts.load_average_15m,
            ] {
                let load = load.unwrap();
                assert!(load >= 0.0, "{load}");
            }
        }
    }
}

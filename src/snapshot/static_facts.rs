//! Host facts that stay fixed for the life of the process.

use std::io::IsTerminal;
use std::path::Path;

use crate::env::{EnvNames, EnvSource};

use super::ci::detect_ci;

/// The compilation target, recorded by the build script.
const TARGET_TRIPLE: &str = env!("ACTIX_TELEMETRY_TARGET");

/// Mixed into the host name before hashing, with the installation's salt, so the hash
/// identifies a host only within this library's data.
const HOST_HASH_DOMAIN: &str = "actix-telemetry/host:";

/// Facts that never change while the process runs; gathered once (blocking: call from a
/// blocking thread).
#[derive(Clone, Debug, PartialEq)]
pub struct StaticFacts {
    /// Friendly operating system name as PostHog spells it (`Linux`, `Mac OS X`, `Windows`, …).
    pub os: String,
    /// Operating system version, e.g. `12` on Debian 12.
    pub os_version: Option<String>,
    /// Locale from `LC_ALL`, `LC_MESSAGES` or `LANG` without its encoding, e.g. `en_US`.
    pub locale: Option<String>,
    /// IANA time zone name, e.g. `Europe/Berlin`.
    pub timezone: Option<String>,
    /// The target triple the crate was compiled for.
    pub target_triple: String,
    /// Whether standard input is a terminal (an interactive session).
    pub stdin_is_terminal: bool,
    /// Whether the process runs under continuous integration (see [`super::detect_ci`]).
    pub is_ci: bool,
    /// Processors available to the process.
    pub processor_count: u64,
    /// Total physical memory in bytes.
    pub physical_memory_bytes: u64,
    /// When the host booted, in seconds since the Unix epoch.
    pub boot_time: Option<u64>,
    /// Base name of the executable, never a full path.
    pub process_name: Option<String>,
    /// Hash of the host name with a random salt (`h-` and 16 hex digits); the raw name is
    /// never kept. The runtime's salt is the installation's, kept in the state directory, so
    /// the hash is the same for every run on one machine and says nothing elsewhere: without
    /// the salt it cannot be matched against a list of names.
    pub host_name_hash: Option<String>,
}

impl StaticFacts {
    /// Reads the facts from the host and from `env`, hashing the host name with a new random
    /// salt (so [`host_name_hash`](StaticFacts::host_name_hash) differs at every call; the
    /// runtime hashes with the installation's salt instead).
    ///
    /// Blocks on file system and OS queries, so call it from a blocking thread. A fact that
    /// cannot be read is left as `None` (or a neutral value) rather than failing.
    pub fn gather(env: &EnvSource, names: &EnvNames) -> StaticFacts {
        let salt: [u8; 32] = crate::rng::secret_bytes();
        StaticFacts::gather_salted(env, names, &salt)
    }

    /// [`gather`](StaticFacts::gather), hashing the host name with `salt`.
    pub(crate) fn gather_salted(env: &EnvSource, names: &EnvNames, salt: &[u8]) -> StaticFacts {
        let mut system = sysinfo::System::new();
        system.refresh_memory();
        StaticFacts {
            os: friendly_os_name(std::env::consts::OS),
            os_version: sysinfo::System::os_version().and_then(|value| non_blank(&value)),
            locale: locale_from_env(env),
            timezone: timezone_from(
                env.get("TZ").as_deref(),
                || std::fs::read_link("/etc/localtime").ok(),
                || std::fs::read_to_string("/etc/timezone").ok(),
            ),
            target_triple: TARGET_TRIPLE.to_owned(),
            stdin_is_terminal: std::io::stdin().is_terminal(),
            is_ci: detect_ci(env, names),
            processor_count: std::thread::available_parallelism()
                .map_or(1, |n| u64::try_from(n.get()).unwrap_or(u64::MAX)),
            physical_memory_bytes: system.total_memory(),
            boot_time: Some(sysinfo::System::boot_time()).filter(|&t| t != 0),
            process_name: process_name(),
            host_name_hash: sysinfo::System::host_name()
                .and_then(|value| non_blank(&value))
                .map(|name| hash_host_name(&name, salt)),
        }
    }
}

/// PostHog's names for the operating systems, so events line up with those from its own SDKs.
fn friendly_os_name(os: &str) -> String {
    match os {
        "linux" => "Linux",
        "macos" => "Mac OS X",
        "windows" => "Windows",
        other => other,
    }
    .to_owned()
}

fn non_blank(value: &str) -> Option<String> {
    let trimmed = value.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// The variables in the order the C library consults them for message language.
fn locale_from_env(env: &EnvSource) -> Option<String> {
    ["LC_ALL", "LC_MESSAGES", "LANG"]
        .into_iter()
        .filter_map(|name| env.get(name))
        .find_map(|value| strip_locale_encoding(&value))
}

/// `en_US.UTF-8` → `en_US`: the encoding says nothing about the user's language and only
/// splits one locale into many values. A modifier after the encoding (`@euro`) goes with it.
fn strip_locale_encoding(value: &str) -> Option<String> {
    let value = value.trim();
    let base = value.split_once('.').map_or(value, |(base, _)| base);
    (!base.is_empty()).then(|| base.to_owned())
}

/// The time zone from `TZ`, then the `/etc/localtime` symlink, then `/etc/timezone`.
///
/// The file reads are closures so nothing is touched once an earlier source answers, and so
/// tests can supply their own values.
fn timezone_from(
    tz: Option<&str>,
    localtime_link: impl FnOnce() -> Option<std::path::PathBuf>,
    etc_timezone: impl FnOnce() -> Option<String>,
) -> Option<String> {
    if let Some(zone) = tz.and_then(zone_from_tz) {
        return Some(zone);
    }
    if let Some(zone) = localtime_link().and_then(|target| zone_from_path(&target)) {
        return Some(zone);
    }
    etc_timezone().and_then(|value| non_blank(&value))
}

/// `TZ` may be a zone name, or (with or without the POSIX `:` prefix) a path to a zone file.
/// A path outside a `zoneinfo` directory (such as `/etc/localtime`) names no zone, so the
/// system sources are asked instead.
fn zone_from_tz(tz: &str) -> Option<String> {
    let tz = tz.trim();
    let tz = tz.strip_prefix(':').unwrap_or(tz).trim();
    if tz.is_empty() {
        None
    } else if tz.starts_with('/') {
        zone_from_path(Path::new(tz))
    } else {
        Some(tz.to_owned())
    }
}

/// The zone name from a path into the zone database, e.g.
/// `../usr/share/zoneinfo/Europe/Berlin` → `Europe/Berlin`.
fn zone_from_path(path: &Path) -> Option<String> {
    let path = path.to_str()?;
    let (_, zone) = path.rsplit_once("zoneinfo/")?;
    // `posix/` and `right/` are variants of the same database, not part of the zone name.
    let zone = zone
        .strip_prefix("posix/")
        .or_else(|| zone.strip_prefix("right/"))
        .unwrap_or(zone);
    (!zone.is_empty()).then(|| zone.to_owned())
}

/// Only the base name: the full path of an executable often contains the user's name.
fn process_name() -> Option<String> {
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.file_name()
                .and_then(|name| non_blank(&name.to_string_lossy()))
        })
        .or_else(|| {
            std::env::args_os()
                .next()
                .and_then(|arg0| base_name(&arg0.to_string_lossy()))
        })
}

/// The last component of a path written with either separator; `argv[0]` is whatever the
/// parent passed, so it is not necessarily a path of this platform's kind.
fn base_name(path: &str) -> Option<String> {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path).trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// `h-` and 16 lowercase hex digits: FNV-1a of the domain, `salt` and the name. After a secret
/// salt of 32 random bytes the hash's state is unknown when the name is mixed in, and for a
/// given name each step of FNV-1a maps states one to one, so without the salt every name is as
/// likely to give a hash as any other: a list of names cannot be tried against it.
fn hash_host_name(host_name: &str, salt: &[u8]) -> String {
    let mut input = Vec::with_capacity(HOST_HASH_DOMAIN.len() + salt.len() + host_name.len());
    input.extend_from_slice(HOST_HASH_DOMAIN.as_bytes());
    input.extend_from_slice(salt);
    input.extend_from_slice(host_name.as_bytes());
    format!("h-{:016x}", fnv1a_64(&input))
}

/// 64-bit FNV-1a. Written out rather than taken from `std`'s hashers because the hash is sent
/// to a server and compared across releases: its output must never change, which `std` does
/// not promise.
fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn fnv1a_64_known_vectors() {
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn host_name_hash_shape() {
        let salt = [7u8; 32];
        let hash = hash_host_name("build-box.example.com", &salt);
        assert!(hash.starts_with("h-"), "{hash}");
        assert_eq!(hash.len(), 18, "{hash}");
        assert!(
            hash[2..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert!(!hash.contains("build-box"));
        // Stable for one salt; another salt, another hash; never the unsalted one.
        assert_eq!(hash, hash_host_name("build-box.example.com", &salt));
        assert_ne!(hash, hash_host_name("build-box.example.com", &[8u8; 32]));
        assert_ne!(
            hash,
            format!(
                "h-{:016x}",
                fnv1a_64(b"actix-telemetry/host:build-box.example.com")
            )
        );
        let mut input = b"actix-telemetry/host:".to_vec();
        input.extend_from_slice(&salt);
        input.extend_from_slice(b"build-box.example.com");
        assert_eq!(hash, format!("h-{:016x}", fnv1a_64(&input)));
    }

    #[test]
    fn os_names_are_friendly() {
        assert_eq!(friendly_os_name("linux"), "Linux");
        assert_eq!(friendly_os_name("macos"), "Mac OS X");
        assert_eq!(friendly_os_name("windows"), "Windows");
        assert_eq!(friendly_os_name("freebsd"), "freebsd");
    }

    #[test]
    fn locale_encoding_is_stripped() {
        assert_eq!(
            strip_locale_encoding("en_US.UTF-8").as_deref(),
            Some("en_US")
        );
        assert_eq!(
            strip_locale_encoding("de_DE.ISO-8859-15@euro").as_deref(),
            Some("de_DE")
        );
        assert_eq!(strip_locale_encoding("C.UTF-8").as_deref(), Some("C"));
        assert_eq!(strip_locale_encoding("POSIX").as_deref(), Some("POSIX"));
        assert_eq!(strip_locale_encoding("fr_FR").as_deref(), Some("fr_FR"));
        assert_eq!(strip_locale_encoding(""), None);
        assert_eq!(strip_locale_encoding(".UTF-8"), None);
    }

    #[test]
    fn locale_precedence() {
        let env = EnvSource::fixed([
            ("LC_ALL", ""),
            ("LC_MESSAGES", "de_DE.UTF-8"),
            ("LANG", "en_US.UTF-8"),
        ]);
        assert_eq!(locale_from_env(&env).as_deref(), Some("de_DE"));
        let env = EnvSource::fixed([("LC_ALL", "C"), ("LANG", "en_US.UTF-8")]);
        assert_eq!(locale_from_env(&env).as_deref(), Some("C"));
        let env = EnvSource::fixed([("LANG", "pt_BR.utf8")]);
        assert_eq!(locale_from_env(&env).as_deref(), Some("pt_BR"));
        assert_eq!(locale_from_env(&EnvSource::fixed::<&str, &str>([])), None);
    }

    fn no_link() -> Option<PathBuf> {
        None
    }

    fn no_file() -> Option<String> {
        None
    }

    #[test]
    fn tz_variable_wins() {
        let link = || -> Option<PathBuf> { panic!("/etc/localtime read although TZ was set") };
        assert_eq!(
            timezone_from(Some("Europe/Berlin"), link, no_file).as_deref(),
            Some("Europe/Berlin")
        );
    }

    #[test]
    fn tz_leading_colon_is_stripped() {
        assert_eq!(
            timezone_from(Some(":America/New_York"), no_link, no_file).as_deref(),
            Some("America/New_York")
        );
        assert_eq!(
            timezone_from(Some(":/usr/share/zoneinfo/Asia/Tokyo"), no_link, no_file).as_deref(),
            Some("Asia/Tokyo")
        );
        assert_eq!(
            timezone_from(Some("UTC"), no_link, no_file).as_deref(),
            Some("UTC")
        );
    }

    #[test]
    fn tz_without_zone_falls_back_to_system() {
        let link = || Some(PathBuf::from("/usr/share/zoneinfo/Europe/Paris"));
        assert_eq!(
            timezone_from(Some(":/etc/localtime"), link, no_file).as_deref(),
            Some("Europe/Paris")
        );
        assert_eq!(
            timezone_from(Some(":"), link, no_file).as_deref(),
            Some("Europe/Paris")
        );
        assert_eq!(
            timezone_from(Some(""), link, no_file).as_deref(),
            Some("Europe/Paris")
        );
    }

    #[test]
    fn localtime_link_forms() {
        let relative = || Some(PathBuf::from("../usr/share/zoneinfo/America/Sao_Paulo"));
        assert_eq!(
            timezone_from(None, relative, no_file).as_deref(),
            Some("America/Sao_Paulo")
        );
        let posix = || Some(PathBuf::from("/usr/share/zoneinfo/posix/Europe/Oslo"));
        assert_eq!(
            timezone_from(None, posix, no_file).as_deref(),
            Some("Europe/Oslo")
        );
    }

    #[test]
    fn etc_timezone_is_last_resort() {
        let elsewhere = || Some(PathBuf::from("/var/db/localtime"));
        let file = || Some(String::from("Australia/Sydney\n"));
        assert_eq!(
            timezone_from(None, elsewhere, file).as_deref(),
            Some("Australia/Sydney")
        );
        assert_eq!(
            timezone_from(None, no_link, || Some(String::from("  \n"))),
            None
        );
        assert_eq!(timezone_from(None, no_link, no_file), None);
    }

    #[test]
    fn base_name_drops_directories() {
        assert_eq!(base_name("/home/alice/bin/tool").as_deref(), Some("tool"));
        assert_eq!(
            base_name(r"C:\Users\alice\tool.exe").as_deref(),
            Some("tool.exe")
        );
        assert_eq!(base_name("tool").as_deref(), Some("tool"));
        assert_eq!(base_name("/home/alice/"), None);
    }

    #[test]
    fn process_name_has_no_path() {
        let name = process_name().unwrap();
        assert!(!name.is_empty());
        assert!(!name.contains('/') && !name.contains('\\'), "{name}");
    }

    #[test]
    fn gather_reads_this_host() {
        let env = EnvSource::fixed([("LANG", "en_GB.UTF-8"), ("TZ", "Etc/UTC")]);
        let facts = StaticFacts::gather(&env, &EnvNames::default());
        assert_eq!(facts.target_triple, TARGET_TRIPLE);
        assert!(!facts.target_triple.is_empty());
        assert_eq!(facts.locale.as_deref(), Some("en_GB"));
        assert_eq!(facts.timezone.as_deref(), Some("Etc/UTC"));
        assert!(!facts.is_ci);
        assert!(facts.processor_count >= 1);
        if let Some(name) = &facts.process_name {
            assert!(!name.contains('/') && !name.contains('\\'), "{name}");
        }
        if let Some(hash) = &facts.host_name_hash {
            assert!(hash.starts_with("h-") && hash.len() == 18, "{hash}");
        }
        if sysinfo::IS_SUPPORTED_SYSTEM {
            assert!(facts.physical_memory_bytes > 0);
        }
    }
}

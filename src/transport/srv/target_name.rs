//! Which SRV targets may be contacted. A DNS answer names the hosts the runtime sends data to, so
//! a target is checked on its DNS name itself, label by label, never on its escaped text form:
//! every label must be a host name label (letters, digits, `-` and `_`), and the last labels must
//! equal one of the allowed suffixes. Only then is the name turned into the host of a URL, where
//! no byte of it can mean anything but a host name.
//!
//! (The text form would not do: a label `example!` prints as `example\!`, so
//! `attacker.example\!.allowed.suffix` ends with `.allowed.suffix`, while a URL parser takes the
//! backslash for the end of the host and sends the request to `attacker.example`.)

use hickory_resolver::proto::rr::Name;

/// Why a target was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Rejected {
    /// The root name: by RFC 2782 the service is not available there, and it is no host.
    #[error("the target is the root name")]
    Root,
    /// A label that is empty or holds a byte that is not a letter, digit, `-` or `_`.
    #[error("label {index} holds bytes outside letters, digits, '-' and '_'")]
    Label { index: usize },
    /// Not under any of the allowed suffixes.
    #[error("the target is not under an allowed suffix")]
    Outside,
}

/// The allowed suffixes, each as its labels in lower case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AllowedSuffixes(Vec<Vec<Vec<u8>>>);

/// Whether `label` is a host name label: one or more letters, digits, `-` and `_`.
fn is_host_label(label: &[u8]) -> bool {
    !label.is_empty()
        && label
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
}

impl AllowedSuffixes {
    /// Suffixes as written in the settings (`example.com`, `.example.com.`). An empty one (or
    /// `.`) allows every host. A suffix holding an empty label or a byte no host label has
    /// matches no target.
    pub fn new(suffixes: &[String]) -> Self {
        AllowedSuffixes(
            suffixes
                .iter()
                .map(|s| {
                    let s = s.trim().trim_start_matches('.').trim_end_matches('.');
                    if s.is_empty() {
                        Vec::new()
                    } else {
                        s.split('.')
                            .map(|label| label.as_bytes().to_ascii_lowercase())
                            .collect()
                    }
                })
                .collect(),
        )
    }

    /// The host to put in a URL for the target `name` (its labels in lower case, joined by
    /// dots, without the trailing dot), or why it is not accepted.
    pub fn host(&self, name: &Name) -> Result<String, Rejected> {
        let labels: Vec<&[u8]> = name.iter().collect();
        self.host_of_labels(&labels)
    }

    /// [`host`](Self::host) on the labels of a name, most specific first.
    pub fn host_of_labels(&self, labels: &[&[u8]]) -> Result<String, Rejected> {
        if labels.is_empty() {
            return Err(Rejected::Root);
        }
        if let Some(index) = labels.iter().position(|l| !is_host_label(l)) {
            return Err(Rejected::Label { index });
        }
        let under = |suffix: &Vec<Vec<u8>>| {
            suffix.len() <= labels.len()
                && labels[labels.len() - suffix.len()..]
                    .iter()
                    .zip(suffix)
                    .all(|(label, s)| label.eq_ignore_ascii_case(s))
        };
        if !self.0.iter().any(under) {
            return Err(Rejected::Outside);
        }
        let mut host = String::new();
        for (i, label) in labels.iter().enumerate() {
            if i > 0 {
                host.push('.');
            }
            // Every byte was checked to be ASCII above.
            host.extend(label.iter().map(|b| char::from(b.to_ascii_lowercase())));
        }
        Ok(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn allowed(suffixes: &[&str]) -> AllowedSuffixes {
        AllowedSuffixes::new(&suffixes.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn name(labels: &[&[u8]]) -> Name {
        Name::from_labels(labels.iter().copied()).unwrap()
    }

    #[test]
    fn suffixes_match_whole_labels() {
        let a = allowed(&[".example.test."]);
        let host = |text: &str| a.host(&Name::from_ascii(text).unwrap());
        assert_eq!(host("node1.example.test."), Ok("node1.example.test".into()));
        assert_eq!(host("Node1.EXAMPLE.test."), Ok("node1.example.test".into()));
        assert_eq!(host("example.test."), Ok("example.test".into()));
        assert_eq!(host("evilexample.test."), Err(Rejected::Outside));
        assert_eq!(host("example.test.evil."), Err(Rejected::Outside));
        assert_eq!(host("."), Err(Rejected::Root));
    }

    #[test]
    fn a_label_with_other_bytes_is_rejected_even_when_its_text_ends_with_a_suffix() {
        let a = allowed(&["example.test"]);
        for bad in [
            &b"example!"[..],
            b"example/x",
            b"example@x",
            b"example:80",
            b"example.x",
            b"example x",
            b"example\\",
            b"example\xff",
            b"exa\0mple",
        ] {
            let target = name(&[b"attacker", bad, b"example", b"test"]);
            // The escaped text passes a check on text, which is the point of not using it.
            assert!(target.to_string().ends_with(".example.test."), "{target}");
            assert_eq!(
                a.host(&target),
                Err(Rejected::Label { index: 1 }),
                "{target}"
            );
        }
        // A dot inside the last labels is no way around the suffix either.
        assert_eq!(
            a.host(&name(&[b"attacker", b"example.test"])),
            Err(Rejected::Label { index: 1 })
        );
        assert_eq!(
            a.host(&name(&[b"node-1_a", b"example", b"test"])),
            Ok("node-1_a.example.test".into())
        );
    }

    #[test]
    fn an_empty_suffix_allows_every_host_name_but_not_other_bytes() {
        let a = allowed(&[""]);
        assert_eq!(a.host(&name(&[b"anything"])), Ok("anything".into()));
        assert_eq!(
            a.host(&name(&[b"any/thing"])),
            Err(Rejected::Label { index: 0 })
        );
        assert_eq!(a.host(&Name::root()), Err(Rejected::Root));
    }

    #[test]
    fn a_suffix_that_no_host_label_can_equal_matches_nothing() {
        let a = allowed(&["example..test", "ex!ample.test"]);
        assert_eq!(
            a.host(&name(&[b"a", b"example", b"test"])),
            Err(Rejected::Outside)
        );
        assert_eq!(
            a.host(&name(&[b"a", b"ex!ample", b"test"])),
            Err(Rejected::Label { index: 1 })
        );
        assert_eq!(allowed(&[]).host(&name(&[b"a"])), Err(Rejected::Outside));
    }

    /// Labels mostly made of host-name bytes, with the bytes that matter in URLs mixed in.
    fn label() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            8 => proptest::sample::select(
                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_".to_vec()
            ),
            1 => proptest::sample::select(b"!./@:\\ ?#[]%\0\x7f".to_vec()),
            1 => any::<u8>(),
        ];
        proptest::collection::vec(byte, 0..8)
    }

    /// Labels of an allowed suffix as the settings could spell them: never empty, no dot, no
    /// white space, sometimes with a byte no host label has.
    fn suffix_label() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            8 => proptest::sample::select(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_".to_vec()),
            1 => proptest::sample::select(b"!/@:".to_vec()),
        ];
        proptest::collection::vec(byte, 1..6)
    }

    /// The oracle: every label is made of `[A-Za-z0-9_-]` and the last labels equal the
    /// suffix's, ignoring ASCII case.
    fn expected(labels: &[Vec<u8>], suffix: &[Vec<u8>]) -> bool {
        let host_label = |l: &Vec<u8>| {
            !l.is_empty()
                && l.iter()
                    .all(|b| matches!(b, b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
        };
        !labels.is_empty()
            && labels.iter().all(host_label)
            && suffix.len() <= labels.len()
            && labels[labels.len() - suffix.len()..]
                .iter()
                .zip(suffix)
                .all(|(l, s)| l.eq_ignore_ascii_case(s))
    }

    /// Whether a URL parser takes the last label for the end of an IPv4 address (`1`, `0x1f`),
    /// and so rewrites the host.
    fn ends_in_a_number(labels: &[Vec<u8>]) -> bool {
        labels.last().is_some_and(|last| {
            last.iter()
                .all(|b| b.is_ascii_hexdigit() || *b == b'x' || *b == b'X')
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn accepts_exactly_host_labels_under_a_suffix(
            prefix in proptest::collection::vec(label(), 0..4),
            suffix in proptest::collection::vec(suffix_label(), 0..3),
            under_suffix in any::<bool>(),
            tail in proptest::collection::vec(label(), 0..2),
        ) {
            let suffix_text = suffix
                .iter()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect::<Vec<_>>()
                .join(".");
            let a = AllowedSuffixes::new(&[suffix_text]);
            let mut labels = prefix;
            if under_suffix {
                labels.extend(suffix.iter().cloned());
            }
            labels.extend(tail);
            let slices: Vec<&[u8]> = labels.iter().map(Vec::as_slice).collect();

            let answer = a.host_of_labels(&slices);
            prop_assert_eq!(answer.is_ok(), expected(&labels, &suffix), "{:?}", labels);
            if let Ok(host) = &answer {
                // A URL parser reads the host back whole: nothing in it ends the host early or
                // names a port or a user.
                let url = url::Url::parse(&format!("http://{host}:1/"));
                if let (Ok(url), false) = (url, ends_in_a_number(&labels)) {
                    prop_assert_eq!(url.host_str(), Some(host.as_str()));
                    prop_assert_eq!(url.port(), Some(1));
                    prop_assert_eq!(url.username(), "");
                }
            }

            // Through a real DNS name too, where the labels make one.
            let lengths_fit = labels.iter().all(|l| (1..=63).contains(&l.len()));
            if lengths_fit && let Ok(name) = Name::from_labels(slices.iter().copied()) {
                prop_assert_eq!(a.host(&name), answer);
            }
        }
    }
}

//! Whether the process runs under continuous integration.

use crate::env::{EnvNames, EnvSource};

/// Variables that CI services set in every job. `CI` is the generic convention; the others catch
/// services (or older versions of them) that do not set `CI`.
const CI_VARIABLES: &[&str] = &[
    "CI",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "BUILDKITE",
    "CIRCLECI",
    "TRAVIS",
    "JENKINS_URL",
    "TEAMCITY_VERSION",
    "TF_BUILD",
    "BITBUCKET_BUILD_NUMBER",
    "CODEBUILD_BUILD_ID",
    "DRONE",
    "APPVEYOR",
    "SEMAPHORE",
];

/// Whether the process runs under CI.
///
/// The `{PREFIX}_IDS_IN_CI` variable (`names.in_ci`) decides when it is `1`/`true` (CI) or
/// `0`/`false` (not CI), case-insensitively. Otherwise the process is in CI when any of the usual
/// CI variables (`CI`, `GITHUB_ACTIONS`, `GITLAB_CI`, `BUILDKITE`, `CIRCLECI`, `TRAVIS`,
/// `JENKINS_URL`, `TEAMCITY_VERSION`, `TF_BUILD`, `BITBUCKET_BUILD_NUMBER`, `CODEBUILD_BUILD_ID`,
/// `DRONE`, `APPVEYOR`, `SEMAPHORE`) is set to a non-empty value other than `false` or `0`.
pub fn detect_ci(env: &EnvSource, names: &EnvNames) -> bool {
    if let Some(forced) = env.get(&names.in_ci).as_deref().and_then(parse_flag) {
        return forced;
    }
    CI_VARIABLES
        .iter()
        .any(|name| env.get(name).is_some_and(|value| signals_ci(&value)))
}

/// `Some` for an explicit yes/no; any other value leaves the decision to detection, so a typo
/// in the override cannot silently turn CI detection off.
fn parse_flag(value: &str) -> Option<bool> {
    let value = value.trim();
    if value == "1" || value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value == "0" || value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A set variable counts unless it is blank or says no: `CI=false` is a common way to tell tools
/// to behave interactively inside a CI job, and the same reading is applied to every variable so
/// the rule stays simple.
fn signals_ci(value: &str) -> bool {
    !value.trim().is_empty() && parse_flag(value) != Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(vars: &[(&str, &str)]) -> bool {
        detect_ci(
            &EnvSource::fixed(vars.iter().copied()),
            &EnvNames::default(),
        )
    }

    #[test]
    fn nothing_set_is_not_ci() {
        assert!(!detect(&[]));
    }

    #[test]
    fn forced_on() {
        assert!(detect(&[("DETSYS_IDS_IN_CI", "1")]));
        assert!(detect(&[("DETSYS_IDS_IN_CI", "TRUE")]));
    }

    #[test]
    fn forced_off_beats_detection() {
        assert!(!detect(&[
            ("DETSYS_IDS_IN_CI", "0"),
            ("GITHUB_ACTIONS", "true"),
            ("CI", "true"),
        ]));
        assert!(!detect(&[("DETSYS_IDS_IN_CI", "False"), ("CI", "1")]));
    }

    #[test]
    fn unrecognised_override_falls_back_to_detection() {
        assert!(detect(&[("DETSYS_IDS_IN_CI", "maybe"), ("CI", "true")]));
        assert!(!detect(&[("DETSYS_IDS_IN_CI", "maybe")]));
    }

    #[test]
    fn override_uses_the_configured_prefix() {
        let env = EnvSource::fixed([("ACME_IDS_IN_CI", "1")]);
        assert!(detect_ci(&env, &EnvNames::with_prefix("ACME")));
        assert!(!detect_ci(&env, &EnvNames::default()));
    }

    #[test]
    fn github_actions_is_ci() {
        assert!(detect(&[("GITHUB_ACTIONS", "true")]));
    }

    #[test]
    fn ci_false_is_not_ci() {
        assert!(!detect(&[("CI", "false")]));
        assert!(!detect(&[("CI", "0")]));
        assert!(!detect(&[("CI", "")]));
        assert!(detect(&[("CI", "false"), ("GITLAB_CI", "true")]));
    }

    #[test]
    fn generic_ci_value_is_ci() {
        assert!(detect(&[("CI", "true")]));
        assert!(detect(&[("CI", "woodpecker")]));
    }
}

//! What `doctor` found: one [`Check`] per step, and the two ways of
//! printing them (a table for people, JSON for scripts).
use std::fmt::Write as _;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Nothing to do.
    Pass,
    /// The reader works, but not as intended (another driver, no card,
    /// no direct access for this user).
    Warn,
    /// This stops PC/SC applications from using the reader.
    Fail,
    /// The check does not apply to this reader (USB checks on the
    /// simulator) or could not run because an earlier one failed.
    NotApplicable,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::NotApplicable => "n/a",
        }
    }
}

/// One step of the diagnosis.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    /// Stable identifier, for scripts and tests.
    pub name: &'static str,
    /// The outcome.
    pub status: Status,
    /// What was found, with the paths and values looked at.
    pub detail: String,
    /// What to do about it: a concrete command where there is one.
    pub advice: Option<String>,
}

impl Check {
    /// A check that passed.
    pub fn pass(name: &'static str, detail: impl Into<String>) -> Check {
        Check::new(name, Status::Pass, detail, None::<String>)
    }

    /// A check that does not apply, saying why.
    pub fn not_applicable(name: &'static str, detail: impl Into<String>) -> Check {
        Check::new(name, Status::NotApplicable, detail, None::<String>)
    }

    /// A warning or failure with its remedy.
    pub fn new(
        name: &'static str,
        status: Status,
        detail: impl Into<String>,
        advice: Option<impl Into<String>>,
    ) -> Check {
        Check {
            name,
            status,
            detail: detail.into(),
            advice: advice.map(Into::into),
        }
    }
}

/// The whole diagnosis of one reader.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    /// The reader examined (a device name), or what was looked for.
    pub reader: String,
    /// No check failed: PC/SC applications can use the reader.
    pub usable: bool,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

impl Report {
    /// A report over `checks`; usable when none failed.
    pub fn new(reader: String, checks: Vec<Check>) -> Report {
        let usable = !checks.iter().any(|c| c.status == Status::Fail);
        Report {
            reader,
            usable,
            checks,
        }
    }

    /// One line per check, the advice indented under it, and a verdict.
    pub fn to_text(&self) -> String {
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let mut out = format!("ferroccid doctor: {}\n", self.reader);
        for check in &self.checks {
            let _ = writeln!(
                out,
                "  {:<4}  {:<width$}  {}",
                check.status.label(),
                check.name,
                check.detail
            );
            if let Some(advice) = &check.advice {
                let _ = writeln!(out, "        {:<width$}  -> {advice}", "");
            }
        }
        let failed: Vec<&str> = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| c.name)
            .collect();
        if failed.is_empty() {
            out.push_str("The reader is usable through PC/SC.\n");
        } else {
            let _ = writeln!(
                out,
                "The reader is not usable: {} failed.",
                failed.join(", ")
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_failure_makes_the_reader_unusable_and_warnings_do_not() {
        let warned = Report::new(
            "x".into(),
            vec![
                Check::pass("a", "fine"),
                Check::new("b", Status::Warn, "meh", Some("do this")),
                Check::not_applicable("c", "no"),
            ],
        );
        assert!(warned.usable);
        assert!(warned.to_text().contains("-> do this"));
        let failed = Report::new(
            "x".into(),
            vec![Check::new("b", Status::Fail, "broken", Some("fix it"))],
        );
        assert!(!failed.usable);
        assert!(failed.to_text().contains("not usable: b failed"));
    }

    #[test]
    fn json_names_every_field_and_the_status_in_snake_case() {
        let report = Report::new(
            "sim".into(),
            vec![Check::not_applicable("usb-device", "simulated")],
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["checks"][0]["status"], "not_applicable");
        assert_eq!(json["checks"][0]["advice"], serde_json::Value::Null);
        assert_eq!(json["usable"], true);
    }
}

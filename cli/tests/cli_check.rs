//! `ferroccid check` on the simulator: every built-in profile passes clean
//! (each check passes or is not applicable), and each violation the
//! simulator can commit (`sim:PROFILE?violate=ID`) fails exactly the check
//! of that id, with a non-zero exit status.

use assert_cmd::Command;
use ferroccid_sim::profile::BUILTIN_NAMES;
use ferroccid_sim::Violation;
use serde_json::Value;

/// Runs `ferroccid check --json` on `reader`: exit code and the report.
fn check(reader: &str) -> (i32, Value) {
    let out = Command::cargo_bin("ferroccid")
        .unwrap()
        .args(["check", "--json", "--reader", reader])
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{reader}: no JSON report ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

/// (id, result) of every check in the report.
fn results(report: &Value) -> Vec<(String, String)> {
    report["checks"]
        .as_array()
        .expect("checks array")
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["result"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn every_builtin_profile_passes_clean() {
    for profile in BUILTIN_NAMES {
        let reader = format!("sim:{profile}");
        let (code, report) = check(&reader);
        let results = results(&report);
        assert_eq!(
            results.len(),
            Violation::ALL.len(),
            "{reader}: one row per check"
        );
        for (id, result) in &results {
            assert!(
                result == "pass" || result == "n/a",
                "{reader}: {id} is {result}:\n{report:#}"
            );
        }
        assert_eq!(code, 0, "{reader}: exit status");
        assert_eq!(report["failed"], Value::Array(vec![]), "{reader}");
    }
}

#[test]
fn the_default_profile_exercises_every_check() {
    // On the tpdu profile nothing is n/a: the violations below are caught
    // by checks that really ran.
    let (_, report) = check("sim:tpdu");
    for (id, result) in results(&report) {
        assert_eq!(result, "pass", "{id}:\n{report:#}");
    }
}

#[test]
fn each_violation_fails_exactly_its_check() {
    for violation in Violation::ALL {
        let id = violation.id();
        let reader = format!("sim:tpdu?violate={id}");
        let (code, report) = check(&reader);
        let failed: Vec<String> = results(&report)
            .into_iter()
            .filter(|(_, result)| result == "fail")
            .map(|(check, _)| check)
            .collect();
        assert_eq!(failed, vec![id.to_owned()], "{reader}:\n{report:#}");
        assert_eq!(code, 1, "{reader}: exit status");
        let row = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap();
        assert!(
            row["clause"].as_str().unwrap().starts_with("CCID 1.1 §"),
            "{row}"
        );
        assert!(!row["detail"].as_str().unwrap().is_empty(), "{row}");
    }
}

#[test]
fn an_unknown_violation_is_a_usage_error() {
    let out = Command::cargo_bin("ferroccid")
        .unwrap()
        .args(["check", "--reader", "sim:tpdu?violate=nonsense"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("violate=ID"), "{stderr}");
}

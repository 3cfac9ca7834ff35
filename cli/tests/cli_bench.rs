//! `ferroccid bench` on the simulated reader and over USB/IP: the JSON object's
//! counts and percentiles are consistent with the run asked for, the responses
//! are the card's, and bad input is refused. (Timings are printed, not asserted.)
#[path = "support/usbip_export.rs"]
mod usbip_export;
use assert_cmd::Command;
use usbip_export::UsbIpExport;

fn bench(args: &[&str]) -> serde_json::Value {
    let out = Command::cargo_bin("ferroccid")
        .unwrap()
        .arg("bench")
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn check(figures: &serde_json::Value, apdus: u64) {
    assert_eq!(figures["apdus"], apdus, "{figures}");
    let f = |k: &str| {
        figures[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k} missing: {figures}"))
    };
    assert!(f("min_us") > 0.0);
    assert!(f("min_us") <= f("median_us") && f("median_us") <= f("p90_us"));
    assert!(f("p90_us") <= f("p99_us") && f("p99_us") <= f("max_us"));
    // Throughput is the count over the run's time.
    assert!((f("apdu_per_s") * f("seconds") - apdus as f64).abs() < 1.0);
    // No round trip is shorter than the fastest, so the run took at least
    // apdus × min.
    assert!(f("seconds") * 1e6 >= f("min_us") * apdus as f64 * 0.999);
}

#[test]
fn the_figures_fit_the_run() {
    let figures = bench(&[
        "-n",
        "300",
        "--reader",
        "sim:tpdu-t1",
        "00A4000C023F00",
        "0084000008",
    ]);
    check(&figures, 600);
    let responses = figures["responses"].as_array().unwrap();
    assert_eq!(responses[0], "9000");
    let challenge = responses[1].as_str().unwrap();
    assert_eq!(challenge.len(), 20);
    assert!(challenge.ends_with("9000"));
    eprintln!("sim:tpdu-t1: {figures}");
    // The default APDU is GET CHALLENGE.
    let figures = bench(&["-n", "50"]);
    check(&figures, 50);
    assert!(figures["responses"][0].as_str().unwrap().ends_with("9000"));
}

#[test]
fn bad_input_is_refused() {
    for args in [
        &["-n", "0"][..],
        &["00A4"][..],
        &["--reader", "no-such-reader-at-all"][..],
    ] {
        let out = Command::cargo_bin("ferroccid")
            .unwrap()
            .arg("bench")
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn a_reader_over_usbip_is_benched_too() {
    let export = UsbIpExport::start(&["--profile".as_ref(), "tpdu".as_ref()]);
    let reader = export.reader();
    let figures = bench(&["-n", "200", "--reader", &reader]);
    drop(export);
    check(&figures, 200);
    eprintln!("{reader}: {figures}");
}

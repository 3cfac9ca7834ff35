//! `ferroccid atr` on real ATRs from pcsc-tools' list; expected values
//! decoded by hand from ISO/IEC 7816-3 §8 (byte-by-byte notes per test).
use assert_cmd::Command;
use serde_json::{json, Value};

fn run_json(hex: &str) -> (bool, Value, String) {
    let out = Command::cargo_bin("ferroccid")
        .unwrap()
        .args(["atr", "--json", hex])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let value: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    (
        out.status.success(),
        value,
        String::from_utf8(out.stderr).unwrap(),
    )
}

const KEYS: [&str; 21] = [
    "atr",
    "convention",
    "protocols",
    "default_protocol",
    "ta1",
    "fi",
    "di",
    "f_max_mhz",
    "specific_mode",
    "specific_protocol",
    "n",
    "wi",
    "ifsc",
    "cwi",
    "bwi",
    "edc",
    "historical",
    "tck",
    "tck_ok",
    "problems",
    "times",
];

fn assert_keys(v: &Value) {
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    keys.sort();
    let mut expected = KEYS.to_vec();
    expected.sort();
    assert_eq!(keys, expected);
}

#[test]
fn openpgp_card() {
    // TA1=13: Fi 372 Di 4, 5 MHz. TC1=FF: N=255. TD1=81, TD2=31: T=1.
    // TA3=80: IFSC 128; TB3=45: BWI 4 CWI 5. TCK B1 correct.
    let (ok, v, _) = run_json("3B FA 13 00 FF 81 31 80 45 00 31 C1 73 C0 01 00 00 90 00 B1");
    assert!(ok);
    assert_keys(&v);
    assert_eq!(
        v,
        json!({
            "atr": "3BFA1300FF813180450031C173C00100009000B1",
            "convention": "direct",
            "protocols": [1],
            "default_protocol": 1,
            "ta1": 0x13,
            "fi": 372,
            "di": 4,
            "f_max_mhz": 5,
            "specific_mode": false,
            "specific_protocol": null,
            "n": 255,
            "wi": 10,
            "ifsc": 128,
            "cwi": 5,
            "bwi": 4,
            "edc": "lrc",
            "historical": "0031C173C00100009000",
            "tck": "B1",
            "tck_ok": true,
            "problems": [],
            // Fi 372, Di 4 at 4 MHz: etu 372 / 16 = 23.25 µs; WWT 960 x 10 x 372 / 4;
            // CWT (11 + 2^5) etu; BWT 11 etu + 2^4 x 960 x 372 / 4.
            "times": {
                "clock_khz": 4000,
                "initial_etu_us": 93.0,
                "etu_us": 23.25,
                "wwt_us": 892800.0,
                "cwt_us": 999.75,
                "bwt_us": 1428735.75
            }
        })
    );
}

#[test]
fn inverse_convention_t0_card() {
    // TS=3F inverse. T0=28: TB1 only, K=8. No TD: T=0, no TCK.
    let (ok, v, _) = run_json("3F 28 00 00 11 14 00 03 68 90 00");
    assert!(ok);
    assert_eq!(v["convention"], "inverse");
    assert_eq!(v["protocols"], json!([0]));
    assert_eq!(v["default_protocol"], 0);
    assert_eq!(v["ta1"], Value::Null);
    assert_eq!((v["fi"].clone(), v["di"].clone()), (json!(372), json!(1)));
    assert_eq!(v["f_max_mhz"], 5);
    assert_eq!(v["n"], 0);
    assert_eq!(v["historical"], "0011140003689000");
    assert_eq!(v["tck"], Value::Null);
    assert_eq!(v["tck_ok"], Value::Null);
}

#[test]
fn fi_768_t1_with_t15_global_bytes() {
    // T0=D0: TA1 TC1 TD1, K=0. TA1=A8: FI=A → Fi 768, 7.5 MHz; DI=8 → 12.
    // TC1=FF: N 255. TD1=81: T=1. TD2=F1: TA3..TD3 for T=1: IFSC FB=251,
    // TB3=24: BWI 2 CWI 4, TC3=00: LRC. TD3=1F: T=15, TA4=C3. TCK F4.
    let (ok, v, _) = run_json("3BD0A8FF81F1FB24001FC3F4");
    assert!(ok);
    assert_eq!(v["protocols"], json!([1]));
    assert_eq!(v["ta1"], 0xA8);
    assert_eq!((v["fi"].clone(), v["di"].clone()), (json!(768), json!(12)));
    assert_eq!(v["f_max_mhz"], 7.5);
    assert_eq!(v["n"], 255);
    assert_eq!(v["ifsc"], 251);
    assert_eq!((v["bwi"].clone(), v["cwi"].clone()), (json!(2), json!(4)));
    assert_eq!(v["edc"], "lrc");
    assert_eq!(v["historical"], "");
    assert_eq!(v["tck"], "F4");
    assert_eq!(v["tck_ok"], true);
}

#[test]
fn t0_with_t15_has_tck() {
    // T0=FE: TA1..TD1, K=14. TA1=94: Fi 512, Di 8. TD1=80: T=0; TD2=1F:
    // T=15 with TA3=42. T=15 present → TCK 02 present.
    let (ok, v, _) = run_json("3BFE940000801F42803180664750204583018301900002");
    assert!(ok);
    assert_eq!(v["protocols"], json!([0]));
    assert_eq!((v["fi"].clone(), v["di"].clone()), (json!(512), json!(8)));
    assert_eq!(v["wi"], 10);
    assert_eq!(v["historical"], "8031806647502045830183019000");
    assert_eq!(v["tck"], "02");
    assert_eq!(v["tck_ok"], true);
}

#[test]
fn specific_mode_card() {
    // T0=90: TA1 TD1. TA1=95. TD1=11: TA2, T=1. TA2=01: specific T=1.
    // TCK = 90^95^11^01 = 15.
    let (ok, v, _) = run_json("3B 90 95 11 01 15");
    assert!(ok);
    assert_eq!(v["specific_mode"], true);
    assert_eq!(v["specific_protocol"], 1);
    assert_eq!(v["default_protocol"], 1);
    assert_eq!((v["fi"].clone(), v["di"].clone()), (json!(512), json!(16)));
}

#[test]
fn bad_tck_is_decoded_then_fails_with_the_offset() {
    // The valid ATR of `tck_ok_true…` above ends in B1; B2 is one bit off.
    let (ok, v, stderr) = run_json("3BFA1300FF813180450031C173C00100009000B2");
    assert!(!ok, "a wrong TCK must fail");
    assert_keys(&v);
    assert_eq!(v["tck"], "B2");
    assert_eq!(v["tck_ok"], false);
    assert_eq!(v["historical"], "0031C173C00100009000", "still decoded");
    assert_eq!(v["problems"][0]["offset"], 19);
    assert!(
        v["problems"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("B1 expected"),
        "{v}"
    );
    assert!(stderr.contains("bad TCK B2"), "{stderr}");
    assert!(stderr.contains("offset 19"), "{stderr}");
}

#[test]
fn readable_but_invalid_atrs_are_decoded_then_fail() {
    for (hex, offset, needle) in [
        // T0=80: TD1. TD1=0F: T=15, allowed from TD2 on (§8.2.3). TCK 80^0F.
        ("3B 80 0F 8F", 2, "T=15"),
        // TD1=01 indicates T=1, so TCK is mandatory (§8.2.5); it is absent.
        ("3B 80 01", 3, "TCK missing"),
        // T0=00: the ATR ends at offset 1; FF follows it.
        ("3B 00 FF", 2, "after the end"),
        // TA1=71: FI 7 is RFU (§8.3, table 7).
        ("3B 10 71", 2, "RFU FI"),
    ] {
        let (ok, v, stderr) = run_json(hex);
        assert!(!ok, "{hex} accepted");
        assert_keys(&v);
        let problems = v["problems"].as_array().unwrap();
        assert!(
            problems
                .iter()
                .any(|p| p["offset"] == offset && p["problem"].as_str().unwrap().contains(needle)),
            "{hex}: {v}"
        );
        assert!(
            stderr.contains(&format!("offset {offset}")) && stderr.contains(needle),
            "{hex}: {stderr}"
        );
    }
    // The human decode is printed in full before the failure.
    let out = Command::cargo_bin("ferroccid")
        .unwrap()
        .args(["atr", "3B800F8F"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("TD1 = 0F  T=15"), "{text}");
    assert!(text.contains("TCK = 8F  correct"), "{text}");
    assert!(
        text.contains("Invalid: TD1 indicates T=15, invalid in TD1 at offset 2"),
        "{text}"
    );
}

#[test]
fn valid_atrs_have_no_problems_and_succeed() {
    let (ok, v, stderr) = run_json("3B 90 95 11 01 15");
    assert!(ok, "{stderr}");
    assert_eq!(v["problems"], json!([]));
    assert_eq!(stderr, "");
}

#[test]
fn invalid_atrs_fail_with_reason_and_offset() {
    for (hex, needle) in [
        ("3C 00", "TS"),
        ("3B 10", "offset 2"),
        ("3B", "offset 1"),
        ("3B 0", "odd"),
        ("3B ZZ", "hex"),
    ] {
        let (ok, v, stderr) = run_json(hex);
        assert!(!ok, "{hex} accepted");
        let message = v["error"].as_str().expect("error key");
        assert!(message.contains(needle), "{hex}: {message}");
        assert!(stderr.contains(needle), "{hex}: {stderr}");
        assert_eq!(v.as_object().unwrap().len(), 1);
    }
}

#[test]
fn human_output_explains_every_byte() {
    let out = Command::cargo_bin("ferroccid")
        .unwrap()
        .args(["atr", "3BD0A8FF81F1FB24001FC3F4"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "TS  = 3B  direct convention",
        "TA1 = A8  Fi=768, Di=12, f(max)=7.5 MHz",
        "TC1 = FF  N=255",
        "TD1 = 81  protocol T=1",
        "TA3 = FB  IFSC=251",
        "TB3 = 24  BWI=2, CWI=4",
        "TC3 = 00  error detection code LRC",
        "TD3 = 1F  T=15",
        "TA4 = C3  clock stop no preference; classes A (5 V), B (3 V)",
        "TCK = F4  correct",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    let failed = Command::cargo_bin("ferroccid")
        .unwrap()
        .args(["atr", "3B80"])
        .output()
        .unwrap();
    assert!(!failed.status.success());
    assert!(
        failed.stdout.is_empty(),
        "a truncated ATR cannot be decoded"
    );
}

/// The times of ISO/IEC 7816-3 at a clock, worked by hand for this ATR
/// (TA1 = 96: Fi 512, Di 32; WI 10, CWI 5, BWI 4 by default or from TB3 45):
/// etu = 512 / (32 x f); WWT = 960 x 10 x 512 / f; CWT = (11 + 2^5) etu;
/// BWT = 11 etu + 2^4 x 960 x 372 / f.
#[test]
fn atr_prints_etu_and_waiting_times_at_a_clock() {
    let times = |extra: &[&str]| -> serde_json::Value {
        let out = Command::cargo_bin("ferroccid")
            .unwrap()
            .args(["atr", "--json", "3B939680B1FE451F0331C06406"])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["times"].clone()
    };
    let at_4 = times(&[]);
    assert_eq!(at_4["clock_khz"], 4000, "the typical default clock");
    assert_eq!(at_4["etu_us"], 4.0);
    assert_eq!(at_4["initial_etu_us"], 93.0);
    assert_eq!(at_4["wwt_us"], 1_228_800.0);
    assert_eq!(at_4["cwt_us"], 172.0);
    assert_eq!(at_4["bwt_us"], 1_428_524.0);
    let at_5 = times(&["--clock-khz", "5000"]);
    assert_eq!(at_5["etu_us"], 3.2);
    assert_eq!(at_5["bwt_us"], 35.2 + 1_142_784.0);
    // The 4-slot simulated reader announces dwDefaultClock 2500 kHz.
    let at_reader = times(&["--reader", "sim:4-slot"]);
    assert_eq!(at_reader["clock_khz"], 2500);
    assert_eq!(at_reader["etu_us"], 6.4);
    let out = Command::cargo_bin("ferroccid")
        .unwrap()
        .args(["atr", "3B939680B1FE451F0331C06406"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Times at 4000 kHz: etu 4.000 µs"), "{text}");
    assert!(text.contains("BWT 1428524 µs"), "{text}");
}

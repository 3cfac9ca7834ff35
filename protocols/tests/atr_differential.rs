//! Differential test: every exact ATR of pcsc-tools' smartcard_list.txt
//! decoded by ferroccid and by pcsc-tools' own `ATR_analysis` code (run in
//! one Perl process by `tests/scripts/atr-peer.pl`), compared on protocols,
//! Fi, Di, N, IFSC, CWI/BWI, EDC and TCK validity.
//!
//! Every disagreement must be listed in [`KNOWN_DISAGREEMENTS`] with the
//! reason the peer is wrong; the test fails on a new disagreement and on a
//! listed one that no longer disagrees.
use ferroccid_protocols::atr::{AnomalyKind, Atr, AtrError};
use ferroccid_protocols::edc::Edc;
use ferroccid_protocols::params;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const SMARTCARD_LIST: &str = "/usr/share/pcsc/smartcard_list.txt";
const ATR_ANALYSIS: &str = "/usr/bin/ATR_analysis";

/// §8.2.5: only T=0 is indicated (no TD, or TDs with T=0 only), so TCK
/// shall be absent and the byte after the K historical bytes does not belong
/// to the ATR. ATR_analysis takes any (K+1)-th byte for a TCK.
const EXTRA_BYTE_T0_ONLY: &str =
    "§8.2.5: T=0 only, TCK shall be absent; peer reads the extra byte as TCK";
/// §8.2.5: a TD indicates T≠0 (T=1, T=14 or T=15), so TCK is mandatory, and
/// the ATR ends right after the K historical bytes. ATR_analysis only looks
/// for TCK when K+1 bytes remain and silently accepts the missing TCK.
const MISSING_TCK: &str = "§8.2.5: T≠0 indicated, TCK mandatory but missing; peer does not check";
/// §8.2.2: T0 announces K historical bytes that are not there. ATR_analysis
/// stops without a word when it runs out of bytes right after the interface
/// bytes.
const MISSING_HISTORICAL: &str =
    "§8.2.2: historical bytes announced by T0 missing; peer stops silently";

/// ATR (hex) → why ferroccid and ATR_analysis differ: in every case
/// ferroccid rejects the ATR as malformed and the peer misses the fault.
const KNOWN_DISAGREEMENTS: &[(&str, &str)] = &[
    ("3B02145011", EXTRA_BYTE_T0_ONLY),
    ("3B101450", EXTRA_BYTE_T0_ONLY),
    ("3B230000364181", EXTRA_BYTE_T0_ONLY),
    (
        "3B3F96008012009131C0640E4744FA72F741052F",
        EXTRA_BYTE_T0_ONLY,
    ),
    ("3B6500002063CB680026", EXTRA_BYTE_T0_ONLY),
    ("3B6700FFC50000FFFFFFFF5D", EXTRA_BYTE_T0_ONLY),
    ("3B6B0000000031C0643F680100079000", EXTRA_BYTE_T0_ONLY),
    ("3B6D0000", MISSING_HISTORICAL),
    ("3B6D00000080318065B0893501F183009000", EXTRA_BYTE_T0_ONLY),
    (
        "3B6F0000805A2811421010122B260CD45A829000",
        EXTRA_BYTE_T0_ONLY,
    ),
    ("3B8B005275746F6B656E6C745344E3", EXTRA_BYTE_T0_ONLY),
    ("3B8C8001502752318100000000007181", MISSING_TCK),
    ("3B8D0180FBA000000397425446590401", MISSING_TCK),
    ("3B9596C0F01FC20F100A0A16", MISSING_TCK),
    ("3B9E95801FC78031E073FE211B66D00219151300", MISSING_TCK),
    ("3B9E96801FC78031E073FE211B66D00177970D00", MISSING_TCK),
    (
        "3B9F11406049524445544F204143532056352E3800",
        EXTRA_BYTE_T0_ONLY,
    ),
    ("3B9F95801FC78031E073FE2113574A33052E323400", MISSING_TCK),
    ("3B9F978131FE458065544312210831C073F621808105", MISSING_TCK),
    ("3BBA14008131865D0064057B020331809000", MISSING_TCK),
    ("3BBA14008131865D0064057B0203319000FF", MISSING_TCK),
    ("3BBA94004014", MISSING_HISTORICAL),
    (
        "3BBF96008131FE5D00640411000031C073F701D0009000",
        MISSING_TCK,
    ),
    (
        "3BBF96008131FE5D00640411030131C07301D000900000",
        MISSING_TCK,
    ),
    (
        "3BBF96008131FE5D00640411030131C073F701D0009000",
        MISSING_TCK,
    ),
    ("3BED00008131FE450031C071C6644D35354D0F9000", MISSING_TCK),
    ("3BEE00008131804380318066B1A1110100F683009000", MISSING_TCK),
    ("3BEE00008131804380318066B1A11101A0F683009000", MISSING_TCK),
    (
        "3BEF00FF813166456563202049424D20332E3120202020",
        MISSING_TCK,
    ),
    ("3BF57100FFFE2400011E0F3339320103", MISSING_TCK),
    ("3BF81300008131FE454A4F5076323431B7", MISSING_TCK),
    ("3BF81300FF108053430663010F900000", EXTRA_BYTE_T0_ONLY),
    ("3BF99600008031FE455343453720474E335E", MISSING_TCK),
    ("3BFD9600008131204380318065B0831148C883009000", MISSING_TCK),
    ("3BFD9600008131484280318065B0840100C883009000", MISSING_TCK),
    (
        "3BFF95000150801C444E41535034323020526576533430F1",
        EXTRA_BYTE_T0_ONLY,
    ),
];

fn peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/scripts/atr-peer.pl")
}

/// The ATRs of the list without wildcards (`..`) or ranges (`[...]`), in
/// file order, each once.
fn exact_atrs(list: &str) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for line in list.lines() {
        if line.starts_with('#') || line.starts_with('\t') || line.trim().is_empty() {
            continue;
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let exact = tokens
            .iter()
            .all(|t| t.len() == 2 && t.chars().all(|c| c.is_ascii_hexdigit()));
        if !exact {
            continue;
        }
        let hex = tokens.concat().to_ascii_uppercase();
        if seen.insert(hex.clone()) {
            out.push(hex);
        }
    }
    out
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn run_peer(atrs: &[String]) -> BTreeMap<String, Value> {
    let script = peer_script();
    assert!(
        Path::new(ATR_ANALYSIS).exists(),
        "{ATR_ANALYSIS} is missing: install the Debian package pcsc-tools \
         (tests/scripts/install-deps.sh)"
    );
    let mut child = Command::new("perl")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run perl {}: {e}", script.display()));
    let mut stdin = child.stdin.take().unwrap();
    let input = atrs.join("\n") + "\n";
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        output.status.success(),
        "peer driver failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut map = BTreeMap::new();
    for line in String::from_utf8(output.stdout).unwrap().lines() {
        let v: Value = serde_json::from_str(line).expect("peer prints JSON lines");
        map.insert(v["atr"].as_str().unwrap().to_string(), v);
    }
    assert_eq!(map.len(), atrs.len(), "peer answered every ATR once");
    map
}

/// Compare one ATR; `Err` says what differs.
fn compare(hex: &str, peer: &Value) -> Result<(), String> {
    let structural = peer["truncated"] == true || peer["too_long"] == true;
    let atr = match Atr::parse(&unhex(hex)) {
        Err(e) => {
            return if structural {
                Ok(())
            } else {
                Err(format!("ferroccid rejects ({e}), peer accepts"))
            }
        }
        Ok(atr) => atr,
    };
    if structural {
        return Err(format!(
            "peer reports a structure error, ferroccid accepts: {peer}"
        ));
    }
    let mut diffs = Vec::new();

    // Protocols: every TD's T in order, without duplicates or T=15; [0] if none.
    let mut peer_protocols: Vec<u8> = Vec::new();
    for t in peer["protocols"].as_array().unwrap() {
        let t = t.as_u64().unwrap() as u8;
        if t != 15 && !peer_protocols.contains(&t) {
            peer_protocols.push(t);
        }
    }
    if peer_protocols.is_empty() {
        peer_protocols.push(0);
    }
    let ours: Vec<u8> = atr.protocols().iter().collect();
    if ours != peer_protocols {
        diffs.push(format!("protocols {ours:?} vs peer {peer_protocols:?}"));
    }

    // Fi and Di: the table value of TA1's nibbles, RFU when undefined,
    // Fd/Dd when TA1 is absent.
    let table_fi = params::fi(atr.fi_index());
    let table_di = params::di(atr.di_index());
    match (&peer["fi"], &peer["di"]) {
        (Value::Null, Value::Null) => {
            if atr.ta1().is_some() || atr.fi() != 372 || atr.di() != 1 {
                diffs.push("peer sees no TA1".into());
            }
        }
        (pf, pd) => {
            let peer_fi = pf.as_u64().map(|f| f as u16);
            let peer_di = pd.as_u64().map(|d| d as u8);
            if table_fi != peer_fi || table_di != peer_di {
                diffs.push(format!(
                    "Fi/Di {table_fi:?}/{table_di:?} vs peer {peer_fi:?}/{peer_di:?}"
                ));
            }
            if let (Some(f), Some(d)) = (table_fi, table_di) {
                if atr.fi() != f || atr.di() != d {
                    diffs.push("decoded Fi/Di differ from TA1".into());
                }
            }
        }
    }

    let n = peer["n"].as_u64().unwrap_or(0) as u8;
    if atr.n() != n {
        diffs.push(format!("N {} vs peer {n}", atr.n()));
    }

    let has = |kind: AnomalyKind| atr.anomalies().any(|a| a.kind == kind);
    match peer["ifsc"].as_u64() {
        None if atr.ifsc() != 32 => diffs.push(format!("IFSC {} vs peer default", atr.ifsc())),
        Some(0) | Some(255) if !has(AnomalyKind::RfuIfsc) => {
            diffs.push("peer IFSC RFU not flagged".into())
        }
        Some(v) if (1..=254).contains(&v) && atr.ifsc() as u64 != v => {
            diffs.push(format!("IFSC {} vs peer {v}", atr.ifsc()))
        }
        _ => {}
    }

    let bwi = peer["bwi"].as_u64().unwrap_or(4) as u8;
    let cwi = peer["cwi"].as_u64().unwrap_or(13) as u8;
    if (atr.bwi(), atr.cwi()) != (bwi, cwi) {
        diffs.push(format!(
            "BWI/CWI {}/{} vs peer {bwi}/{cwi}",
            atr.bwi(),
            atr.cwi()
        ));
    }

    match peer["edc"].as_str() {
        None | Some("LRC") if atr.edc() != Edc::Lrc => diffs.push("EDC CRC vs peer LRC".into()),
        Some("CRC") if atr.edc() != Edc::Crc => diffs.push("EDC LRC vs peer CRC".into()),
        Some("RFU") if !has(AnomalyKind::RfuEdc) => diffs.push("peer EDC RFU not flagged".into()),
        _ => {}
    }

    let peer_tck = match peer["tck"].as_str() {
        None => None,
        Some("ok") => Some(true),
        Some(_) => Some(false),
    };
    if atr.tck_ok() != peer_tck {
        diffs.push(format!("TCK ok {:?} vs peer {peer_tck:?}", atr.tck_ok()));
    }

    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("; "))
    }
}

#[test]
fn atr_differential_against_atr_analysis() {
    let list = std::fs::read_to_string(SMARTCARD_LIST).unwrap_or_else(|e| {
        panic!(
            "{SMARTCARD_LIST} is missing ({e}): install the Debian package pcsc-tools \
             (tests/scripts/install-deps.sh)"
        )
    });
    let atrs = exact_atrs(&list);
    assert!(atrs.len() > 3000, "only {} exact ATRs found", atrs.len());
    let peer = run_peer(&atrs);

    let mut disagreements = BTreeMap::new();
    let mut errors_by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for hex in &atrs {
        if let Err(e) = Atr::parse(&unhex(hex)) {
            *errors_by_kind.entry(error_kind(&e)).or_default() += 1;
        }
        if let Err(reason) = compare(hex, &peer[hex]) {
            disagreements.insert(hex.clone(), reason);
        }
    }
    let agree = atrs.len() - disagreements.len();
    println!(
        "ATR differential: {agree} of {} exact ATRs agree with ATR_analysis, {} known disagreements; \
         ferroccid rejections by kind: {errors_by_kind:?}",
        atrs.len(),
        disagreements.len()
    );

    let known: BTreeMap<&str, &str> = KNOWN_DISAGREEMENTS.iter().copied().collect();
    let mut report = String::new();
    for (hex, reason) in &disagreements {
        if !known.contains_key(hex.as_str()) {
            report.push_str(&format!("new disagreement {hex}: {reason}\n"));
        }
    }
    for hex in known.keys() {
        if !disagreements.contains_key(*hex) {
            report.push_str(&format!("listed disagreement {hex} no longer disagrees\n"));
        }
    }
    assert!(report.is_empty(), "{report}");
}

fn error_kind(e: &AtrError) -> &'static str {
    match e {
        AtrError::TooShort { .. } => "too short",
        AtrError::TooLong { .. } => "too long",
        AtrError::InvalidTs { .. } => "invalid TS",
        AtrError::Overrun { .. } => "overrun",
        AtrError::Trailing { .. } => "trailing",
        AtrError::BadTck { .. } => "bad TCK",
        AtrError::Rfu { .. } => "RFU",
    }
}

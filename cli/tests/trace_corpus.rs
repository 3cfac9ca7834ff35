//! `ferroccid trace` on the libccid log excerpts of `../shared/corpus/logs/` (read in
//! place, never copied). Expected values are read off the logged bytes with CCID 1.1
//! §6 (message layouts, bStatus/bError) and ISO/IEC 7816-3 §11 (T=1 blocks).
use assert_cmd::Command;
use serde_json::Value;
use std::path::PathBuf;

fn corpus_dir() -> PathBuf {
    let dir =
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("../shared/corpus/logs");
    assert!(
        dir.is_dir(),
        "the libccid log corpus is missing: {} (shared/ must sit beside the repository)",
        dir.display()
    );
    dir
}

fn trace_json(file: &PathBuf) -> Vec<Value> {
    let out = Command::cargo_bin("ferroccid")
        .unwrap()
        .arg("trace")
        .arg(file)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

/// Independent count of libccid traffic lines: outside `#` comments, a `->`/`<-`
/// followed by a six-digit hex lun or `lun: N,`, then at least one hex byte.
fn traffic_lines(text: &str) -> usize {
    text.lines()
        .map(|l| l.trim_start().trim_start_matches('>').trim_start())
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            ["-> ", "<- "].iter().any(|m| {
                l.split(m).nth(1).is_some_and(|rest| {
                    let mut words = rest.split_whitespace();
                    let first = words.next().unwrap_or("");
                    let (lun_ok, next) = if first == "lun:" {
                        let n = words.next().unwrap_or("");
                        (n.ends_with(','), words.next())
                    } else {
                        (
                            first.len() == 6 && first.chars().all(|c| c.is_ascii_hexdigit()),
                            words.next(),
                        )
                    };
                    lun_ok
                        && next.is_some_and(|b| {
                            b.len() >= 2 && b[..2].chars().all(|c| c.is_ascii_hexdigit())
                        })
                })
            })
        })
        .count()
}

fn file(name: &str) -> PathBuf {
    corpus_dir().join(name)
}

#[test]
fn every_corpus_log_decodes_one_record_per_traffic_line() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "corpus has {} files", files.len());
    let mut total = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let records = trace_json(f);
        assert_eq!(records.len(), traffic_lines(&text), "{}", f.display());
        for r in &records {
            assert!(
                r["type"].is_string(),
                "{}: every record is named: {r}",
                f.display()
            );
        }
        total += records.len();
    }
    assert!(total >= 20, "only {total} messages in the whole corpus");
}

#[test]
fn power_on_with_5v_and_a_6_byte_atr() {
    // PCSC-103: 62 00000000 00 0C 01 00 00 -> 80 06000000 00 0C 00 00 00 3B 04 17 04 FF FF
    let r = trace_json(&file("PCSC-103.txt"));
    assert_eq!(r[0]["type"], "PC_to_RDR_IccPowerOn");
    assert_eq!(r[0]["seq"], 0x0C);
    assert_eq!(r[0]["power_select"], 1, "bPowerSelect 01 = 5.0 V");
    assert_eq!(r[1]["type"], "RDR_to_PC_DataBlock");
    assert_eq!(r[1]["seq"], 0x0C);
    assert_eq!(r[1]["length"], 6);
    assert_eq!(r[1]["atr"], "3B 04 17 04 FF FF");
}

#[test]
fn failed_power_on_is_icc_mute() {
    // PCSC-102: 80 00000000 00 4E 41 FE 00: bStatus 0x41 = command failed (b6) and
    // ICC present but inactive (1); bError 0xFE = ICC_MUTE (CCID Table 6.2-2)
    let r = trace_json(&file("PCSC-102.txt"));
    assert_eq!(r[1]["status"], 0x41);
    assert_eq!(r[1]["error"], 0xFE);
    assert_eq!(r[1]["length"], 0);
}

#[test]
fn t1_tpdu_reader_blocks_are_decoded() {
    // OpenSC-1275: the answer 00 00 02 90 00 92 is NAD 00, PCB 00 (I-block, N(S)=0,
    // no chaining), LEN 2, INF 90 00, LRC 00^00^02^90^00 = 92.
    let r = trace_json(&file("OpenSC-1275.txt"));
    assert_eq!(r.len(), 2);
    assert_eq!(r[1]["t1"]["nad"], 0);
    assert_eq!(r[1]["t1"]["pcb"], 0);
    assert_eq!(r[1]["t1"]["inf"], "90 00");
    // the command's bytes are partly redacted (XX): flagged, still a block (LEN 0x45)
    assert_eq!(r[0]["redacted"], true);
    assert_eq!(r[0]["length"], 73, "dwLength 0x49");
    assert_eq!(r[0]["t1"]["pcb"], 0);
}

#[test]
fn apdu_level_xfrblock_and_empty_response() {
    // pyscard-18: SELECT A0 A4 00 00 02 7F 10 (GSM class A0) answered by a DataBlock
    // with dwLength 0, bStatus 0, bError FE
    let r = trace_json(&file("pyscard-18.txt"));
    assert_eq!(r[0]["type"], "PC_to_RDR_XfrBlock");
    assert_eq!(r[0]["command"]["cla"], 0xA0);
    assert_eq!(r[0]["command"]["ins"], 0xA4);
    assert_eq!(r[0]["command"]["data"], "7F 10");
    assert_eq!(r[1]["length"], 0);
    assert_eq!(r[1]["status"], 0);
    assert_eq!(r[1]["error"], 0xFE);
}

#[test]
fn atr_seen_without_its_power_on_and_get_data_response() {
    // CCID-79 starts with the DataBlock answering a PowerOn that is not in the excerpt:
    // 3B DA 18 FF 81 B1 FE 75 1F 03 ... TD1=81 offers T=1 first
    let r = trace_json(&file("CCID-79.txt"));
    assert_eq!(
        r[0]["atr"],
        "3B DA 18 FF 81 B1 FE 75 1F 03 00 31 C5 73 C0 01 40 00 90 00 0C"
    );
    let get_data = r
        .iter()
        .find(|m| m["command"]["ins"] == 0xCA)
        .expect("GET DATA");
    assert_eq!(get_data["command"]["p1"], 0x5F);
    assert_eq!(get_data["command"]["p2"], 0x52);
    let answer = r
        .iter()
        .find(|m| m["seq"] == get_data["seq"] && m["direction"] == "in")
        .unwrap();
    assert_eq!(answer["response"]["sw"], "9000");
}

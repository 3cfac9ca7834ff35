//! Every one of the 773 real class descriptors in the shared corpus decodes
//! to exactly what libccid's `parse` printed for the same interface.
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use ferroccid::ccid::{ClassDescriptor, ExchangeLevel};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

fn read(path: &PathBuf) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "corpus file {} is missing or unreadable ({e}); the corpus test cannot run without it",
            path.display()
        )
    })
}

/// One interface block of libccid's text: `  name: value` fields (class
/// descriptor, two-space indent) and ` name: value` fields (device/interface),
/// plus the indented explanation lines under `dwFeatures`.
#[derive(Default, Debug)]
struct Block {
    fields: HashMap<String, String>,
    feature_lines: Vec<String>,
    /// Already matched to a TSV row.
    used: bool,
}

fn parse_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    let mut last_field = String::new();
    for raw in text.lines() {
        let line = raw.trim_end_matches('\r');
        if line.starts_with(" idVendor:") {
            blocks.extend(current.take());
            current = Some(Block::default());
        }
        let Some(block) = current.as_mut() else {
            continue;
        };
        let indent = line.len() - line.trim_start().len();
        if indent >= 3 {
            if last_field == "dwFeatures" {
                block.feature_lines.push(line.trim().to_string());
            }
            continue;
        }
        if let Some((name, value)) = line.trim().split_once(':') {
            last_field = name.to_string();
            // Device and interface fields (one space) are kept apart from the
            // class descriptor's (two spaces): both have a `bLength`.
            let key = if indent == 1 {
                format!("device.{name}")
            } else {
                name.to_string()
            };
            block
                .fields
                .entry(key)
                .or_insert_with(|| value.trim().to_string());
        }
    }
    blocks.extend(current);
    blocks
}

fn hex_u32(s: &str) -> u32 {
    let s = s.trim();
    u32::from_str_radix(
        s.strip_prefix("0x")
            .unwrap_or_else(|| panic!("not hex: {s:?}")),
        16,
    )
    .unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
}

fn first_dec(s: &str) -> u32 {
    let tok = s.split_whitespace().next().unwrap_or("");
    tok.parse()
        .unwrap_or_else(|e| panic!("bad decimal {s:?}: {e}"))
}

/// "4.000 MHz" → 4000 kHz (libccid prints kHz / 1000 with three decimals).
fn mhz_to_khz(s: &str) -> u32 {
    let num = s
        .strip_suffix(" MHz")
        .unwrap_or_else(|| panic!("no MHz in {s:?}"));
    let (int, frac) = num
        .split_once('.')
        .unwrap_or_else(|| panic!("no decimals in {s:?}"));
    assert_eq!(frac.len(), 3, "{s:?}");
    int.parse::<u32>().unwrap() * 1000 + frac.parse::<u32>().unwrap()
}

/// "1.10" → 0x0110 (libccid prints `%X.%02X` of the two BCD bytes).
fn bcd(s: &str) -> u16 {
    let (major, minor) = s
        .split_once('.')
        .unwrap_or_else(|| panic!("bad bcdCCID {s:?}"));
    (u16::from_str_radix(major, 16).unwrap() << 8) | u16::from_str_radix(minor, 16).unwrap()
}

fn level_from_text(lines: &[String]) -> Option<ExchangeLevel> {
    lines.iter().find_map(|l| {
        if l.ends_with("Short and Extended APDU level exchange") {
            Some(ExchangeLevel::ExtendedApdu)
        } else if l.ends_with("Short APDU level exchange") {
            Some(ExchangeLevel::ShortApdu)
        } else if l.ends_with("TPDU level exchange") {
            Some(ExchangeLevel::Tpdu)
        } else if l.ends_with("Character level exchange") {
            Some(ExchangeLevel::Character)
        } else {
            None
        }
    })
}

#[test]
fn all_773_descriptors_agree_with_libccid_text() {
    let dir = corpus_dir();
    let tsv = read(&dir.join("reader-class-descriptors.tsv"));
    let mut blocks_by_file: HashMap<String, Vec<Block>> = HashMap::new();
    let mut levels: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut checked = 0usize;
    let mut mismatches = Vec::new();

    for (line_no, row) in tsv
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let cols: Vec<&str> = row.split('\t').collect();
        assert_eq!(cols.len(), 4, "TSV line {}: {row:?}", line_no + 1);
        let (file, index, vid_pid, hex) = (cols[0], cols[1], cols[2], cols[3]);
        let index: usize = index.parse().expect("interface index");
        let bytes: Vec<u8> = hex
            .split_whitespace()
            .map(|h| u8::from_str_radix(h, 16).expect("hex byte"))
            .collect();
        // The index column is the interface's bInterfaceNumber. Some files
        // hold several devices (same interface number, maybe same VID:PID),
        // so rows take the first unused block with that number and VID:PID.
        let blocks = blocks_by_file
            .entry(file.to_string())
            .or_insert_with(|| parse_blocks(&read(&dir.join("readers").join(file))));
        let (vid, pid) = vid_pid.split_once(':').expect("VID:PID");
        let (vid, pid) = (
            u32::from_str_radix(vid, 16).expect("VID"),
            u32::from_str_radix(pid, 16).expect("PID"),
        );
        let block = blocks
            .iter_mut()
            .find(|b| {
                !b.used
                    && b.fields
                        .get("device.bInterfaceNumber")
                        .map(|n| first_dec(n))
                        == Some(index as u32)
                    && b.fields.get("device.idVendor").map(|v| hex_u32(v)) == Some(vid)
                    && b.fields.get("device.idProduct").map(|v| hex_u32(v)) == Some(pid)
            })
            .unwrap_or_else(|| {
                panic!("{file} has no unused block for interface {index} of {vid_pid}")
            });
        block.used = true;
        let block = &*block;
        let f = |name: &str| -> &str {
            block
                .fields
                .get(name)
                .unwrap_or_else(|| panic!("{file}#{index}: no field {name}"))
        };
        let d = ClassDescriptor::parse(&bytes)
            .unwrap_or_else(|e| panic!("{file}#{index} ({vid_pid}): {e}"));

        let (protocols_hi, protocols_lo) = f("dwProtocols").split_once(' ').unwrap();
        let expected: Vec<(&str, u64, u64)> = vec![
            (
                "bLength",
                u64::from(hex_u32(f("bLength"))),
                u64::from(bytes[0]),
            ),
            (
                "bDescriptorType",
                u64::from(hex_u32(f("bDescriptorType"))),
                u64::from(d.descriptor_type),
            ),
            (
                "bcdCCID",
                u64::from(bcd(f("bcdCCID"))),
                u64::from(d.bcd_ccid),
            ),
            (
                "bMaxSlotIndex",
                u64::from(hex_u32(f("bMaxSlotIndex"))),
                u64::from(d.max_slot_index),
            ),
            (
                "bVoltageSupport",
                u64::from(hex_u32(f("bVoltageSupport"))),
                u64::from(d.voltage_support),
            ),
            (
                "dwProtocols",
                u64::from((hex_u32(protocols_hi) << 16) | hex_u32(protocols_lo)),
                u64::from(d.protocols),
            ),
            (
                "dwDefaultClock",
                u64::from(mhz_to_khz(f("dwDefaultClock"))),
                u64::from(d.default_clock_khz),
            ),
            (
                "dwMaximumClock",
                u64::from(mhz_to_khz(f("dwMaximumClock"))),
                u64::from(d.maximum_clock_khz),
            ),
            (
                "bNumClockSupported",
                u64::from(first_dec(f("bNumClockSupported"))),
                u64::from(d.num_clock_supported),
            ),
            (
                "dwDataRate",
                u64::from(first_dec(f("dwDataRate"))),
                u64::from(d.data_rate),
            ),
            (
                "dwMaxDataRate",
                u64::from(first_dec(f("dwMaxDataRate"))),
                u64::from(d.max_data_rate),
            ),
            (
                "bNumDataRatesSupported",
                u64::from(first_dec(f("bNumDataRatesSupported"))),
                u64::from(d.num_data_rates_supported),
            ),
            (
                "dwMaxIFSD",
                u64::from(first_dec(f("dwMaxIFSD"))),
                u64::from(d.max_ifsd),
            ),
            (
                "dwSynchProtocols",
                u64::from(hex_u32(f("dwSynchProtocols"))),
                u64::from(d.synch_protocols),
            ),
            (
                "dwMechanical",
                u64::from(hex_u32(f("dwMechanical"))),
                u64::from(d.mechanical),
            ),
            (
                "dwFeatures",
                u64::from(hex_u32(f("dwFeatures"))),
                u64::from(d.features),
            ),
            (
                "dwMaxCCIDMessageLength",
                u64::from(first_dec(f("dwMaxCCIDMessageLength"))),
                u64::from(d.max_message_length),
            ),
            (
                "bClassGetResponse",
                u64::from(hex_u32(f("bClassGetResponse"))),
                u64::from(d.class_get_response),
            ),
            (
                "bClassEnvelope",
                u64::from(hex_u32(f("bClassEnvelope"))),
                u64::from(d.class_envelope),
            ),
            (
                "wLcdLayout",
                u64::from(hex_u32(f("wLcdLayout"))),
                u64::from(d.lcd_layout),
            ),
            (
                "bPINSupport",
                u64::from(hex_u32(f("bPINSupport"))),
                u64::from(d.pin_support),
            ),
            (
                "bMaxCCIDBusySlots",
                u64::from(first_dec(f("bMaxCCIDBusySlots"))),
                u64::from(d.max_busy_slots),
            ),
        ];
        for (name, text, ours) in expected {
            if text != ours {
                mismatches.push(format!(
                    "{file}#{index} {name}: text {text:#x}, decoded {ours:#x}"
                ));
            }
        }
        match level_from_text(&block.feature_lines) {
            Some(level) if level == d.exchange_level() => {}
            other => mismatches.push(format!(
                "{file}#{index} exchange level: text {other:?}, decoded {:?}",
                d.exchange_level()
            )),
        }
        *levels.entry(d.exchange_level().as_str()).or_default() += 1;
        checked += 1;
    }

    println!("exchange-level distribution over {checked} interfaces:");
    for (level, count) in &levels {
        println!("  {level:>14}: {count}");
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert_eq!(checked, 773, "the corpus has 773 interfaces");
    let unmatched: Vec<String> = blocks_by_file
        .iter()
        .flat_map(|(file, blocks)| blocks.iter().filter(|b| !b.used).map(move |_| file.clone()))
        .collect();
    assert!(
        unmatched.is_empty(),
        "text blocks with no TSV row: {unmatched:?}"
    );
}

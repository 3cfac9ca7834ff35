//! APDU scripts for bring-up benches: what pcsc-tools' `scriptor` reads,
//! plus expected answers, repeats and captured values.
//!
//! ```text
//! # a comment; blank lines are ignored
//! reset                                   # power the card off and on
//! 00 A4 04 00 07 A0 00 00 02 47 10 01     # scriptor: a command APDU in hex
//! 00 84 00 00 08 => {challenge:8} 90 00   # expected answer, capturing 8 bytes
//! 00 88 00 00 08 ${challenge} 00 => * 90 00
//! 00 B0 00 00 10 => .. .. * 90 00         # `..` any one byte, `*` any bytes
//! 00 20 00 81 => 63 C.                     # a hex digit may be `.` too
//! repeat 3
//!   00 84 00 00 08 => * 90 00
//! end
//! exit                                    # stop here (as scriptor's `exit`)
//! ```
//!
//! Hex bytes may be written with or without spaces (`00A4040007…`). An
//! expected answer is matched against the whole response APDU, data and
//! SW1 SW2; it may hold one variable-length item (`*`, or a capture
//! without a length, `{name}`), the rest being fixed. A capture keeps the
//! bytes it matched for later commands (`${name}`). Parsing checks every
//! line, with its number in each error, before anything is sent; it never
//! panics on any input (`fuzz/fuzz_targets/apdu_script.rs`).

use std::collections::HashMap;
use std::fmt;

/// Deepest nesting of `repeat` blocks.
pub const MAX_DEPTH: usize = 8;
/// Largest `repeat` count.
pub const MAX_REPEAT: u64 = 1_000_000;
/// Longest command APDU a template may produce (an extended case 4).
pub const MAX_COMMAND: usize = 4 + 3 + 65535 + 3;
/// Longest name of a capture.
pub const MAX_NAME: usize = 64;

/// A parsed script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// The steps at the top level.
    pub steps: Vec<Step>,
}

/// One step, with its line number (from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Power the card off and on again.
    Reset { line: usize },
    /// Send a command and check the answer.
    Exchange {
        /// Line of the command.
        line: usize,
        /// The command, with captured values to insert.
        command: Vec<Piece>,
        /// What the response must look like, if anything.
        expect: Option<Pattern>,
    },
    /// Run `body` `count` times.
    Repeat {
        /// Line of `repeat`.
        line: usize,
        /// How many times.
        count: u64,
        /// The steps inside.
        body: Vec<Step>,
    },
    /// Stop the script (successfully).
    Exit { line: usize },
}

/// Part of a command template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal bytes.
    Bytes(Vec<u8>),
    /// The bytes a capture of this name matched.
    Captured(String),
}

/// An expected response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    items: Vec<Item>,
}

/// One item of a [`Pattern`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// A byte; `mask` has the bits that must equal `value` (`9.` → 0xF0).
    Byte { value: u8, mask: u8 },
    /// Any bytes, as many as the fixed items leave.
    Rest,
    /// Bytes kept under `name`: `len` of them, or as many as the fixed
    /// items leave.
    Capture { name: String, len: Option<usize> },
}

/// A script that does not parse: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Line number, from 1.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Why a response did not match its pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Offset of the first byte that differs (or the response length, if
    /// it is too short).
    pub offset: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.message)
    }
}

/// Parses a script (see the module documentation).
pub fn parse(text: &str) -> Result<Script, ParseError> {
    // Open `repeat` blocks: (line, count, steps so far).
    let mut stack: Vec<(usize, u64, Vec<Step>)> = vec![(0, 1, Vec::new())];
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let error = |message: String| ParseError { line, message };
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let lower = content.to_ascii_lowercase();
        let words: Vec<&str> = lower.split_whitespace().collect();
        let step = match words.as_slice() {
            ["reset"] => Step::Reset { line },
            ["exit"] | ["quit"] => Step::Exit { line },
            ["repeat", count] => {
                let count: u64 = count
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_REPEAT).contains(n))
                    .ok_or_else(|| error(format!("repeat needs a count from 1 to {MAX_REPEAT}")))?;
                if stack.len() > MAX_DEPTH {
                    return Err(error(format!(
                        "repeat blocks nest at most {MAX_DEPTH} deep"
                    )));
                }
                stack.push((line, count, Vec::new()));
                continue;
            }
            ["end"] => {
                if stack.len() < 2 {
                    return Err(error("`end` without `repeat`".into()));
                }
                let (start, count, body) = stack.pop().expect("checked above");
                if body.is_empty() {
                    return Err(error(format!("the repeat of line {start} is empty")));
                }
                Step::Repeat {
                    line: start,
                    count,
                    body,
                }
            }
            _ => parse_exchange(content).map_err(error)?,
        };
        let step = match step {
            Step::Exchange {
                expect, command, ..
            } => Step::Exchange {
                line,
                command,
                expect,
            },
            other => other,
        };
        stack.last_mut().expect("the top level stays").2.push(step);
    }
    if stack.len() > 1 {
        let (line, _, _) = stack.last().expect("more than one");
        return Err(ParseError {
            line: *line,
            message: "`repeat` without `end`".into(),
        });
    }
    let (_, _, steps) = stack.pop().expect("the top level");
    Ok(Script { steps })
}

/// `COMMAND [=> EXPECTED]` (line numbers are filled in by the caller).
fn parse_exchange(content: &str) -> Result<Step, String> {
    let (command, expect) = match content.split_once("=>") {
        Some((command, expect)) => (command, Some(expect)),
        None => (content, None),
    };
    let command = parse_command(command)?;
    let expect = expect.map(parse_pattern).transpose()?;
    Ok(Step::Exchange {
        line: 0,
        command,
        expect,
    })
}

fn parse_command(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut digits = String::new();
    let mut rest = text;
    let mut fixed = 0usize;
    let flush = |digits: &mut String, pieces: &mut Vec<Piece>, fixed: &mut usize| {
        if digits.is_empty() {
            return Ok(());
        }
        let bytes = hex_bytes(digits)?;
        *fixed += bytes.len();
        digits.clear();
        pieces.push(Piece::Bytes(bytes));
        Ok::<(), String>(())
    };
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("${") {
            flush(&mut digits, &mut pieces, &mut fixed)?;
            let (name, tail) = after
                .split_once('}')
                .ok_or_else(|| "`${` without `}`".to_string())?;
            pieces.push(Piece::Captured(check_name(name)?.to_owned()));
            rest = tail;
            continue;
        }
        match c {
            c if c.is_ascii_hexdigit() => digits.push(c),
            ' ' | '\t' | ':' => {}
            c => return Err(format!("{c:?} in a command (hex bytes and ${{name}} only)")),
        }
        rest = &rest[c.len_utf8()..];
    }
    flush(&mut digits, &mut pieces, &mut fixed)?;
    if fixed > MAX_COMMAND {
        return Err(format!("{fixed} bytes is longer than any APDU"));
    }
    let has_capture = pieces.iter().any(|p| matches!(p, Piece::Captured(_)));
    if fixed < 4 && !has_capture {
        return Err(format!(
            "{fixed} bytes; a command APDU has at least CLA INS P1 P2"
        ));
    }
    Ok(pieces)
}

fn parse_pattern(text: &str) -> Result<Pattern, String> {
    let mut items = Vec::new();
    for token in text.split_whitespace() {
        if token == "*" {
            items.push(Item::Rest);
        } else if let Some(inner) = token.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            let (name, len) = match inner.split_once(':') {
                Some((name, "*")) => (name, None),
                Some((name, len)) => {
                    let len: usize = len
                        .parse()
                        .ok()
                        .filter(|n| (1..=65538).contains(n))
                        .ok_or_else(|| format!("capture length {len:?} is not 1 to 65538"))?;
                    (name, Some(len))
                }
                None => (inner, None),
            };
            items.push(Item::Capture {
                name: check_name(name)?.to_owned(),
                len,
            });
        } else {
            if token.len() % 2 != 0 {
                return Err(format!("{token:?}: bytes are two hex digits (or `..`)"));
            }
            for pair in token.as_bytes().chunks(2) {
                let (high, high_mask) = pattern_digit(pair[0], token)?;
                let (low, low_mask) = pattern_digit(pair[1], token)?;
                items.push(Item::Byte {
                    value: (high << 4) | low,
                    mask: (high_mask << 4) | low_mask,
                });
            }
        }
    }
    if items.is_empty() {
        return Err("nothing after `=>`".into());
    }
    let variable = items
        .iter()
        .filter(|i| matches!(i, Item::Rest | Item::Capture { len: None, .. }))
        .count();
    if variable > 1 {
        return Err("at most one `*` or length-less capture per answer".into());
    }
    Ok(Pattern { items })
}

/// A hex digit, or `.` (any): the value and the mask of its nibble.
fn pattern_digit(digit: u8, token: &str) -> Result<(u8, u8), String> {
    match digit {
        b'.' => Ok((0, 0)),
        b'0'..=b'9' => Ok((digit - b'0', 0xF)),
        b'a'..=b'f' => Ok((digit - b'a' + 10, 0xF)),
        b'A'..=b'F' => Ok((digit - b'A' + 10, 0xF)),
        _ => Err(format!("{token:?}: not hex, `..`, `*` or {{name:N}}")),
    }
}

fn check_name(name: &str) -> Result<&str, String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(name)
    } else {
        Err(format!(
            "{name:?} is not a capture name (letters, digits, _ and -, at most {MAX_NAME})"
        ))
    }
}

fn hex_bytes(digits: &str) -> Result<Vec<u8>, String> {
    if digits.len() % 2 != 0 {
        return Err(format!("odd number of hex digits in {digits:?}"));
    }
    Ok(digits
        .as_bytes()
        .chunks(2)
        .map(|pair| {
            let value = |d: u8| (d as char).to_digit(16).unwrap_or(0) as u8;
            (value(pair[0]) << 4) | value(pair[1])
        })
        .collect())
}

/// Values captured so far, by name.
pub type Captures = HashMap<String, Vec<u8>>;

/// The command bytes of a template, with captures inserted.
pub fn build_command(pieces: &[Piece], captures: &Captures) -> Result<Vec<u8>, String> {
    let mut command = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Bytes(bytes) => command.extend_from_slice(bytes),
            Piece::Captured(name) => command.extend_from_slice(
                captures
                    .get(name)
                    .ok_or_else(|| format!("${{{name}}} was not captured before"))?,
            ),
        }
    }
    if command.len() < 4 || command.len() > MAX_COMMAND {
        return Err(format!("the command is {} bytes long", command.len()));
    }
    Ok(command)
}

impl Pattern {
    /// Checks `response` (data and SW1 SW2) and stores what the captures
    /// matched. Nothing is stored unless the whole response matches.
    pub fn check(&self, response: &[u8], captures: &mut Captures) -> Result<(), Mismatch> {
        let fixed: usize = self
            .items
            .iter()
            .map(|item| match item {
                Item::Byte { .. } => 1,
                Item::Capture { len: Some(n), .. } => *n,
                _ => 0,
            })
            .sum();
        let variable = self
            .items
            .iter()
            .any(|i| matches!(i, Item::Rest | Item::Capture { len: None, .. }));
        if response.len() < fixed || (!variable && response.len() != fixed) {
            return Err(Mismatch {
                offset: response.len().min(fixed),
                message: format!(
                    "{} bytes, {}{fixed} expected",
                    response.len(),
                    if variable { "at least " } else { "" }
                ),
            });
        }
        let spare = response.len() - fixed;
        let mut at = 0;
        let mut found = Vec::new();
        for item in &self.items {
            match item {
                Item::Byte { value, mask } => {
                    let got = response[at];
                    if got & mask != value & mask {
                        return Err(Mismatch {
                            offset: at,
                            message: format!(
                                "{got:02X} where {} was expected",
                                show(*value, *mask)
                            ),
                        });
                    }
                    at += 1;
                }
                Item::Rest => at += spare,
                Item::Capture { name, len } => {
                    let n = len.unwrap_or(spare);
                    found.push((name.clone(), response[at..at + n].to_vec()));
                    at += n;
                }
            }
        }
        captures.extend(found);
        Ok(())
    }
}

/// A pattern byte as written (`9.`, `..`, `6A`).
fn show(value: u8, mask: u8) -> String {
    let nibble = |v: u8, m: u8| {
        if m == 0 {
            '.'
        } else {
            char::from_digit(u32::from(v), 16)
                .unwrap_or('?')
                .to_ascii_uppercase()
        }
    };
    format!(
        "{}{}",
        nibble(value >> 4, mask >> 4),
        nibble(value & 0xF, mask & 0xF)
    )
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for item in &self.items {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            match item {
                Item::Byte { value, mask } => f.write_str(&show(*value, *mask))?,
                Item::Rest => f.write_str("*")?,
                Item::Capture { name, len: Some(n) } => write!(f, "{{{name}:{n}}}")?,
                Item::Capture { name, len: None } => write!(f, "{{{name}}}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(step: &Step) -> (&[Piece], Option<&Pattern>) {
        match step {
            Step::Exchange {
                command, expect, ..
            } => (command, expect.as_ref()),
            other => panic!("not an exchange: {other:?}"),
        }
    }

    #[test]
    fn scriptor_input_parses_as_it_is() {
        let script = parse("# scriptor\nreset\n00 A4 04 00 07 A0 00 00 02 47 10 01\n00B0000010\nexit\n00 00 00 00\n").unwrap();
        assert_eq!(script.steps.len(), 5);
        assert_eq!(script.steps[0], Step::Reset { line: 2 });
        let (command, expect) = exchange(&script.steps[1]);
        assert_eq!(
            build_command(command, &Captures::new()).unwrap(),
            [0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0x00, 0x00, 0x02, 0x47, 0x10, 0x01]
        );
        assert!(expect.is_none());
        assert_eq!(script.steps[3], Step::Exit { line: 5 });
    }

    #[test]
    fn patterns_match_bytes_wildcards_and_the_rest() {
        let script = parse("00 84 00 00 08 => .. .. * 90 00\n00 20 00 81 => 63 C.").unwrap();
        let (_, expect) = exchange(&script.steps[0]);
        let expect = expect.unwrap();
        let mut captures = Captures::new();
        assert!(expect
            .check(&[1, 2, 3, 4, 0x90, 0x00], &mut captures)
            .is_ok());
        assert!(expect.check(&[1, 2, 0x90, 0x00], &mut captures).is_ok());
        let miss = expect
            .check(&[1, 2, 3, 0x6A, 0x82], &mut captures)
            .unwrap_err();
        assert_eq!(miss.offset, 3);
        assert!(miss.message.contains("6A where 90"), "{miss}");
        assert_eq!(
            expect
                .check(&[1, 0x90, 0x00], &mut captures)
                .unwrap_err()
                .offset,
            3
        );
        let (_, tries) = exchange(&script.steps[1]);
        let tries = tries.unwrap();
        assert!(tries.check(&[0x63, 0xC2], &mut captures).is_ok());
        assert!(tries.check(&[0x63, 0xD2], &mut captures).is_err());
        assert!(
            tries.check(&[0x63, 0xC2, 0x00], &mut captures).is_err(),
            "no `*`: exact length"
        );
        assert_eq!(tries.to_string(), "63 C.");
    }

    #[test]
    fn captures_are_kept_and_inserted() {
        let script = parse(
            "0084000008 => {challenge:8} 9000\n00 88 00 00 08 ${challenge} 00 => {answer} 90 00",
        )
        .unwrap();
        let mut captures = Captures::new();
        let (_, expect) = exchange(&script.steps[0]);
        let response = [1, 2, 3, 4, 5, 6, 7, 8, 0x90, 0x00];
        expect.unwrap().check(&response, &mut captures).unwrap();
        assert_eq!(captures["challenge"], [1, 2, 3, 4, 5, 6, 7, 8]);
        let (command, expect) = exchange(&script.steps[1]);
        assert_eq!(
            build_command(command, &captures).unwrap(),
            [0x00, 0x88, 0x00, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x00]
        );
        expect
            .unwrap()
            .check(&[9, 9, 9, 0x90, 0x00], &mut captures)
            .unwrap();
        assert_eq!(captures["answer"], [9, 9, 9]);
        // A response that does not match stores nothing.
        let mut fresh = Captures::new();
        let (_, first) = exchange(&script.steps[0]);
        assert!(first
            .unwrap()
            .check(&[1, 2, 3, 4, 5, 6, 7, 8, 0x6A, 0x82], &mut fresh)
            .is_err());
        assert!(fresh.is_empty());
        assert!(build_command(&[Piece::Captured("nope".into())], &fresh).is_err());
    }

    #[test]
    fn repeats_nest() {
        let script =
            parse("repeat 2\n  repeat 3\n    00 84 00 00 08\n  end\n  reset\nend\n").unwrap();
        let Step::Repeat { line, count, body } = &script.steps[0] else {
            panic!()
        };
        assert_eq!((*line, *count, body.len()), (1, 2, 2));
        assert!(matches!(body[0], Step::Repeat { count: 3, .. }));
    }

    #[test]
    fn errors_name_their_line() {
        let cases = [
            ("reset\n00 A4 0\n", 2, "odd number"),
            ("00 A4 ZZ 00\n", 1, "'Z'"),
            ("00 A4\n", 1, "at least CLA INS P1 P2"),
            ("repeat 0\n", 1, "count"),
            ("repeat 2\n00 84 00 00\n", 1, "without `end`"),
            ("end\n", 1, "without `repeat`"),
            ("repeat 2\nend\n", 2, "empty"),
            ("00 84 00 00 08 => * {x} 90 00\n", 1, "at most one"),
            ("00 84 00 00 08 =>\n", 1, "nothing after"),
            ("00 84 00 00 08 => {x:0} 90 00\n", 1, "capture length"),
            ("00 84 00 00 ${bad name}\n", 1, "not a capture name"),
            ("00 84 00 00 ${open\n", 1, "without `}`"),
        ];
        for (text, line, words) in cases {
            let error = parse(text).unwrap_err();
            assert_eq!(error.line, line, "{text:?}: {error}");
            assert!(error.message.contains(words), "{text:?}: {error}");
        }
        let deep =
            "repeat 2\n".repeat(MAX_DEPTH + 1) + "00 84 00 00\n" + &"end\n".repeat(MAX_DEPTH + 1);
        assert!(parse(&deep).unwrap_err().message.contains("nest"));
    }
}

//! Command APDU decoding (ISO/IEC 7816-4 §5.1), short and extended length.

/// A decoded command APDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data field (Nc bytes).
    pub data: Vec<u8>,
    /// Ne: maximum number of response bytes expected (0 = no Le field).
    pub ne: usize,
    /// Le was all zeros: "as many bytes as available, up to Ne".
    pub ne_is_max: bool,
}

impl Command {
    /// Builds a command from its parts (used by the T=0 layer).
    pub fn new(header: [u8; 4], data: Vec<u8>, ne: usize, ne_is_max: bool) -> Self {
        let [cla, ins, p1, p2] = header;
        Command {
            cla,
            ins,
            p1,
            p2,
            data,
            ne,
            ne_is_max,
        }
    }

    /// Decodes a whole command APDU; `None` when the length fields are
    /// inconsistent with the APDU length (the card answers 6700).
    pub fn parse(apdu: &[u8]) -> Option<Self> {
        let header = [*apdu.first()?, *apdu.get(1)?, *apdu.get(2)?, *apdu.get(3)?];
        let body = &apdu[4..];
        let short_le = |b: u8| (if b == 0 { 256 } else { usize::from(b) }, b == 0);
        let ext = |hi: u8, lo: u8| {
            let n = usize::from(u16::from_be_bytes([hi, lo]));
            if n == 0 {
                (65536, true)
            } else {
                (n, false)
            }
        };
        let (data, (ne, max)) = match body {
            [] => (&[][..], (0, false)),
            [le] => (&[][..], short_le(*le)),
            [0, hi, lo] => (&[][..], ext(*hi, *lo)),
            [lc, rest @ ..] if *lc != 0 => {
                let lc = usize::from(*lc);
                match rest.len() {
                    n if n == lc => (rest, (0, false)),
                    n if n == lc + 1 => (&rest[..lc], short_le(rest[lc])),
                    _ => return None,
                }
            }
            [0, hi, lo, rest @ ..] => {
                let lc = usize::from(u16::from_be_bytes([*hi, *lo]));
                if lc == 0 {
                    return None;
                }
                match rest.len() {
                    n if n == lc => (rest, (0, false)),
                    n if n == lc + 2 => (&rest[..lc], ext(rest[lc], rest[lc + 1])),
                    _ => return None,
                }
            }
            _ => return None,
        };
        Some(Command::new(header, data.to_vec(), ne, max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        let c = Command::parse(&[0, 0xA4, 0, 0]).unwrap();
        assert_eq!((c.data.len(), c.ne), (0, 0));
        let c = Command::parse(&[0, 0xB0, 0, 0, 0]).unwrap();
        assert_eq!((c.ne, c.ne_is_max), (256, true));
        let c = Command::parse(&[0, 0xB0, 0, 0, 0x10]).unwrap();
        assert_eq!((c.ne, c.ne_is_max), (16, false));
        let c = Command::parse(&[0, 0xD6, 0, 0, 2, 1, 2]).unwrap();
        assert_eq!((c.data, c.ne), (vec![1, 2], 0));
        let c = Command::parse(&[0, 0xA4, 0, 0, 2, 1, 2, 0]).unwrap();
        assert_eq!((c.data, c.ne), (vec![1, 2], 256));
        let c = Command::parse(&[0, 0xB0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!((c.ne, c.ne_is_max), (65536, true));
        let c = Command::parse(&[0, 0xB0, 0, 0, 0, 0x01, 0x00]).unwrap();
        assert_eq!(c.ne, 256);
        let c = Command::parse(&[0, 0xD6, 0, 0, 0, 0, 2, 7, 8]).unwrap();
        assert_eq!((c.data, c.ne), (vec![7, 8], 0));
        let c = Command::parse(&[0, 0x88, 0, 0, 0, 0, 2, 7, 8, 0, 0]).unwrap();
        assert_eq!((c.data, c.ne), (vec![7, 8], 65536));
        assert!(Command::parse(&[0, 0xD6, 0, 0, 3, 1, 2]).is_none());
        assert!(Command::parse(&[0, 0xD6, 0]).is_none());
        assert!(Command::parse(&[0, 0xD6, 0, 0, 0, 0, 0, 1]).is_none());
    }
}

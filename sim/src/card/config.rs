//! Card configuration: what the ATR announces, how the card behaves at the
//! transmission level, and which faults it injects.

use super::edc::lrc;
use super::fs::FileSystem;

/// Transmission protocols the card offers in its ATR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocols {
    /// Only T=0.
    T0,
    /// Only T=1.
    T1,
    /// T=0 first (the default protocol), then T=1.
    Both,
}

impl Protocols {
    /// Whether protocol `t` (0 or 1) is offered.
    pub fn offers(self, t: u8) -> bool {
        matches!(
            (self, t),
            (Protocols::T0 | Protocols::Both, 0) | (Protocols::T1 | Protocols::Both, 1)
        )
    }

    /// The first offered protocol: the one used when no PPS is made.
    pub fn first(self) -> u8 {
        match self {
            Protocols::T0 | Protocols::Both => 0,
            Protocols::T1 => 1,
        }
    }
}

/// Error detection code of T=1 blocks (TC of the first T=1 group, bit 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdcKind {
    /// One-byte LRC (the default).
    Lrc,
    /// Two-byte CRC.
    Crc,
}

/// Specific mode, announced by TA2 (ISO/IEC 7816-3 §8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecificMode {
    /// The protocol the card runs right after the ATR (TA2 bits 4..1).
    pub protocol: u8,
    /// TA2 bit 8: the card is unable to change to negotiable mode.
    pub unable_to_change: bool,
    /// TA2 bit 5: use implicit (card-defined) F/D instead of TA1.
    pub implicit_parameters: bool,
}

/// Commands that take long: the card signals it is busy before answering.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SlowCommands {
    /// INS codes treated as slow.
    pub ins: Vec<u8>,
    /// T=0: NULL procedure bytes (0x60) sent before the answer.
    pub t0_nulls: usize,
    /// T=1: S(WTX request) blocks sent before the answer.
    pub t1_wtx_requests: usize,
    /// T=1: the multiplier carried by each S(WTX request).
    pub wtx_multiplier: u8,
}

/// Faults a test can switch on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Faults {
    /// The card gives no ATR (a mute card).
    pub mute: bool,
    /// No answer to commands with this INS (at every level: APDU, T=0, T=1).
    /// Only the first such command is dropped, so that recovery can be tested.
    pub drop_ins: Option<u8>,
    /// T=1: no answer to the Nth block received since power-on (1-based).
    pub drop_block: Option<usize>,
    /// T=1: the Nth block sent since power-on (1-based) has a corrupt EDC.
    pub corrupt_edc_block: Option<usize>,
}

/// Everything configurable about a virtual card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardConfig {
    /// Protocols offered.
    pub protocols: Protocols,
    /// TA2 when the card is in specific mode; `None` = negotiable mode.
    pub specific_mode: Option<SpecificMode>,
    /// TA1 (Fi in the high nibble, Di in the low nibble); `None` = absent (0x11).
    pub ta1: Option<u8>,
    /// TC1: extra guard time N; `None` = absent (N = 0).
    pub extra_guard_time: Option<u8>,
    /// TC2: T=0 waiting time integer WI; `None` = absent (WI = 10).
    pub wi: Option<u8>,
    /// T=1 information field size of the card (IFSC), 1..=254.
    pub ifsc: u8,
    /// T=1 block waiting time integer (0..=9).
    pub bwi: u8,
    /// T=1 character waiting time integer (0..=15).
    pub cwi: u8,
    /// T=1 error detection code.
    pub edc: EdcKind,
    /// Historical bytes (at most 15).
    pub historical: Vec<u8>,
    /// T=0: acknowledge data one byte at a time with INS⊕FF instead of INS.
    pub t0_single_byte_acks: bool,
    /// Busy behaviour on slow commands.
    pub slow: SlowCommands,
    /// T=1: the card sends S(IFS request) with this IFSC once, in the middle
    /// of the first chain it receives (instead of its first R-block ack).
    pub t1_ifs_request_in_chain: Option<u8>,
    /// Seed of GET CHALLENGE's PRNG; `None` = seeded from the clock.
    pub rng_seed: Option<u64>,
    /// Key of INTERNAL AUTHENTICATE (HMAC-SHA-256, see [`super::app`]).
    pub auth_key: Vec<u8>,
    /// Injected faults.
    pub faults: Faults,
    /// The personalised file system.
    pub files: FileSystem,
    /// PIN (reference 81), compared byte for byte.
    pub pin: Vec<u8>,
    /// PIN retry limit.
    pub pin_tries: u8,
    /// PUK (reference 82) for RESET RETRY COUNTER.
    pub puk: Vec<u8>,
    /// PUK retry limit.
    pub puk_tries: u8,
}

/// Historical bytes of the presets: category indicator 0x00 would require a
/// status indicator, so the presets use a proprietary ASCII label "FerroSim".
pub const PRESET_HISTORICAL: &[u8] = b"FerroSim";

/// The INTERNAL AUTHENTICATE key of the presets (ASCII, 32 bytes).
pub const PRESET_AUTH_KEY: &[u8] = b"ferroccid-sim-internal-auth-key!";

impl Default for CardConfig {
    fn default() -> Self {
        CardConfig::dual()
    }
}

impl CardConfig {
    fn base(protocols: Protocols) -> Self {
        CardConfig {
            protocols,
            specific_mode: None,
            ta1: None,
            extra_guard_time: None,
            wi: None,
            ifsc: 254,
            bwi: 4,
            cwi: 5,
            edc: EdcKind::Lrc,
            historical: PRESET_HISTORICAL.to_vec(),
            t0_single_byte_acks: false,
            slow: SlowCommands::default(),
            t1_ifs_request_in_chain: None,
            rng_seed: None,
            auth_key: PRESET_AUTH_KEY.to_vec(),
            faults: Faults::default(),
            files: FileSystem::demo(),
            pin: b"123456".to_vec(),
            pin_tries: 3,
            puk: b"12345678".to_vec(),
            puk_tries: 5,
        }
    }

    /// A T=0-only card at default speed: `3B 08 "FerroSim"`.
    pub fn t0() -> Self {
        Self::base(Protocols::T0)
    }

    /// A T=1-only card, IFSC 254, BWI 4, CWI 5, LRC.
    pub fn t1() -> Self {
        Self::base(Protocols::T1)
    }

    /// A card offering T=0 (default) and T=1.
    pub fn dual() -> Self {
        Self::base(Protocols::Both)
    }

    /// Like [`CardConfig::dual`] with TA1 = 0x96 (Fi 512, Di 32), for PPS.
    pub fn fast() -> Self {
        CardConfig {
            ta1: Some(0x96),
            ..Self::base(Protocols::Both)
        }
    }

    /// Fi/Di byte the card supports (TA1, or the default 0x11).
    pub fn fi_di(&self) -> u8 {
        self.ta1.unwrap_or(0x11)
    }

    /// Builds the ATR (ISO/IEC 7816-3 §8): TS, T0, interface bytes, historical
    /// bytes and TCK (present unless T=0 is the only protocol indicated).
    pub fn atr(&self) -> Vec<u8> {
        assert!(self.historical.len() <= 15, "at most 15 historical bytes");
        let offers_t0 = self.protocols.offers(0);
        let offers_t1 = self.protocols.offers(1);
        // Each group: (TA, TB, TC, protocol named by the TD that ends the
        // previous group). Group 1 is global; group 2 holds TA2 and TC2.
        let mut groups: Vec<[Option<u8>; 3]> = vec![
            [self.ta1, None, self.extra_guard_time],
            [
                self.specific_mode.map(|m| {
                    (u8::from(m.unable_to_change) << 7)
                        | (u8::from(m.implicit_parameters) << 4)
                        | (m.protocol & 0x0F)
                }),
                None,
                if offers_t0 { self.wi } else { None },
            ],
        ];
        // TD1 names the first offered protocol, TD2 (if any) names T=1 and
        // introduces its specific bytes.
        let mut td_protocol = vec![self.protocols.first()];
        if offers_t1 {
            let tc = match self.edc {
                EdcKind::Lrc => None,
                EdcKind::Crc => Some(0x01),
            };
            groups.push([
                Some(self.ifsc),
                Some((self.bwi << 4) | (self.cwi & 0x0F)),
                tc,
            ]);
            td_protocol.push(1);
        }
        // Drop trailing empty groups (T=0-only cards without TA2/TC2).
        while groups.len() > 1 && groups.last().is_some_and(|g| g.iter().all(Option::is_none)) {
            groups.pop();
        }
        let presence = |g: &[Option<u8>; 3], has_td: bool| -> u8 {
            (u8::from(g[0].is_some()) << 4)
                | (u8::from(g[1].is_some()) << 5)
                | (u8::from(g[2].is_some()) << 6)
                | (u8::from(has_td) << 7)
        };
        let mut atr = vec![0x3B];
        atr.push(presence(&groups[0], groups.len() > 1) | self.historical.len() as u8);
        for (i, group) in groups.iter().enumerate() {
            atr.extend(group.iter().flatten());
            if let Some(next) = groups.get(i + 1) {
                atr.push(
                    presence(next, i + 2 < groups.len())
                        | td_protocol[i.min(td_protocol.len() - 1)],
                );
            }
        }
        atr.extend_from_slice(&self.historical);
        if offers_t1 {
            atr.push(lrc(&atr[1..]));
        }
        atr
    }
}

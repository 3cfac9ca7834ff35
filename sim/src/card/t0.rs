//! T=0 card side at character level (ISO/IEC 7816-3 §10).
//!
//! The machine is fed the characters the interface device sends and returns
//! the characters the card sends back: procedure bytes (ACK = INS for all
//! remaining data, INS⊕FF for one byte, NULL 0x60 while busy), data and
//! SW1 SW2. The direction of P3 is decided by the INS, as a real card does.
//! Case 4 commands answer 61xx and keep the response for GET RESPONSE; a
//! case 2 command whose P3 does not match the available data answers 6Cxx
//! and keeps the response for the reissued command.

use super::apdu::Command;
use super::app::{Application, Response};
use super::Core;

/// Procedure byte: no action, the card is busy.
pub(crate) const NULL: u8 = 0x60;

/// A response kept for a later command.
#[derive(Debug, Clone)]
enum Kept {
    /// After 61xx: consumed by GET RESPONSE.
    ForGetResponse(Response),
    /// After 6Cxx: served when the same header comes back with P3 = `p3`.
    ForReissue {
        header: [u8; 4],
        p3: u8,
        response: Response,
    },
}

/// State of the character-level T=0 machine.
#[derive(Debug, Clone, Default)]
pub(crate) struct T0Machine {
    received: Vec<u8>,
    /// Command data still expected after the header (0 = reading a header).
    data_expected: usize,
    kept: Option<Kept>,
}

fn p3_count(p3: u8) -> usize {
    if p3 == 0 {
        256
    } else {
        usize::from(p3)
    }
}

fn sw_bytes(sw: u16) -> [u8; 2] {
    sw.to_be_bytes()
}

impl T0Machine {
    /// Forgets everything (reset).
    pub(crate) fn reset(&mut self) {
        *self = T0Machine::default();
    }

    /// Feeds characters from the interface device; returns what the card sends.
    pub(super) fn receive(&mut self, bytes: &[u8], core: &mut Core) -> Vec<u8> {
        let mut out = Vec::new();
        for &byte in bytes {
            self.received.push(byte);
            if self.data_expected == 0 {
                if self.received.len() == 5 {
                    self.on_header(core, &mut out);
                }
            } else {
                self.data_expected -= 1;
                if self.data_expected == 0 {
                    self.on_command_data(core, &mut out);
                } else if core.config.t0_single_byte_acks {
                    out.push(self.received[1] ^ 0xFF);
                }
            }
        }
        out
    }

    fn on_header(&mut self, core: &mut Core, out: &mut Vec<u8>) {
        let h = [
            self.received[0],
            self.received[1],
            self.received[2],
            self.received[3],
        ];
        let p3 = self.received[4];
        let ins = h[1];
        if let Some(sw) = Application::check_header(h[0], ins) {
            self.kept = None;
            self.received.clear();
            out.extend(sw_bytes(sw));
            return;
        }
        match self.kept.take() {
            Some(Kept::ForGetResponse(response)) if ins == 0xC0 => {
                self.received.clear();
                self.get_response(response, h, p3, core.config.t0_single_byte_acks, out);
                return;
            }
            Some(Kept::ForReissue {
                header,
                p3: wanted,
                mut response,
            }) if header == h && wanted == p3 => {
                self.received.clear();
                // Ne now equals the data available: "end reached before Ne
                // bytes" no longer applies.
                if response.sw == super::app::sw::END_OF_FILE {
                    response.sw = super::app::sw::OK;
                }
                self.send_data(core, ins, response, out);
                return;
            }
            _ => {}
        }
        if Application::is_outgoing(ins) {
            self.received.clear();
            let ne = p3_count(p3);
            let Some(response) = core.run(&Command::new(h, Vec::new(), ne, false)) else {
                return;
            };
            self.busy(core, ins, out);
            if response.data.is_empty() {
                out.extend(sw_bytes(response.sw));
            } else if response.data.len() == ne {
                self.send_data(core, ins, response, out);
            } else {
                let available = response.data.len() as u8;
                self.kept = Some(Kept::ForReissue {
                    header: h,
                    p3: available,
                    response,
                });
                out.extend([0x6C, available]);
            }
        } else if p3 == 0 {
            self.on_command_data(core, out);
        } else {
            self.data_expected = usize::from(p3);
            out.push(if core.config.t0_single_byte_acks {
                ins ^ 0xFF
            } else {
                ins
            });
        }
    }

    /// The whole command is in: run it; data in the answer means 61xx.
    fn on_command_data(&mut self, core: &mut Core, out: &mut Vec<u8>) {
        let h = [
            self.received[0],
            self.received[1],
            self.received[2],
            self.received[3],
        ];
        let data = self.received.split_off(5);
        self.received.clear();
        let Some(response) = core.run(&Command::new(h, data, 256, true)) else {
            return;
        };
        self.busy(core, h[1], out);
        if response.data.is_empty() {
            out.extend(sw_bytes(response.sw));
        } else {
            out.extend([0x61, response.data.len().min(256) as u8]);
            self.kept = Some(Kept::ForGetResponse(response));
        }
    }

    fn get_response(
        &mut self,
        mut response: Response,
        h: [u8; 4],
        p3: u8,
        single: bool,
        out: &mut Vec<u8>,
    ) {
        if h[0] != 0x00 || h[2] != 0 || h[3] != 0 {
            out.extend(sw_bytes(super::app::sw::WRONG_P1P2));
            self.kept = Some(Kept::ForGetResponse(response));
            return;
        }
        let le = p3_count(p3);
        let available = response.data.len();
        if le > available {
            out.extend([0x6C, available as u8]);
            self.kept = Some(Kept::ForGetResponse(response));
            return;
        }
        let rest = response.data.split_off(le);
        let data = std::mem::take(&mut response.data);
        if rest.is_empty() {
            self.push_data(out, 0xC0, &data, single);
            out.extend(sw_bytes(response.sw));
        } else {
            self.push_data(out, 0xC0, &data, single);
            out.extend([0x61, rest.len().min(256) as u8]);
            response.data = rest;
            self.kept = Some(Kept::ForGetResponse(response));
        }
    }

    fn send_data(&mut self, core: &Core, ins: u8, response: Response, out: &mut Vec<u8>) {
        self.push_data(out, ins, &response.data, core.config.t0_single_byte_acks);
        out.extend(sw_bytes(response.sw));
    }

    fn push_data(&self, out: &mut Vec<u8>, ins: u8, data: &[u8], single: bool) {
        if single {
            for &b in data {
                out.extend([ins ^ 0xFF, b]);
            }
        } else {
            out.push(ins);
            out.extend_from_slice(data);
        }
    }

    fn busy(&self, core: &Core, ins: u8, out: &mut Vec<u8>) {
        if core.config.slow.ins.contains(&ins) {
            out.extend(std::iter::repeat_n(NULL, core.config.slow.t0_nulls));
        }
    }
}

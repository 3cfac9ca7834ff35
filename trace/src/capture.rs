//! Live capture: a [`Transport`] that passes every call through and writes
//! the USB traffic it carries as pcapng with usbmon records (link type 220,
//! `LINUX_USB_MMAPPED`): what Wireshark's USB CCID dissector opens and
//! [`read_frames`](crate::read_frames) reads back, byte for byte.
//!
//! The file starts with the device's GET_DESCRIPTOR answers (device and
//! configuration), as the kernel fetched them when the device was plugged
//! in: Wireshark learns from them that the interface is CCID (class 0x0B)
//! and dissects the bulk transfers of its endpoints as CCID messages.
//!
//! Each transfer becomes a submission and a completion, like usbmon's:
//! bulk-OUT data at submission, IN data at completion. IN transfers that
//! end without data (a read timing out while the reader waits for a card)
//! are not written: they carry no message and would bury the ones that do.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferroccid::descriptors::{emit_configuration, InterfaceDescription};
use ferroccid::{Transport, TransportError, TransportInfo};

/// `LINKTYPE_USB_LINUX_MMAPPED`: usbmon's 64-byte packet header.
pub const LINKTYPE_USBMON_MMAPPED: u16 = 220;
/// usbmon transfer types.
const XFER_INTERRUPT: u8 = 1;
const XFER_CONTROL: u8 = 2;
const XFER_BULK: u8 = 3;
/// usbmon's status of a submission still in progress (`-EINPROGRESS`).
const IN_PROGRESS: i32 = -115;

/// Writes a pcapng file: one section, one usbmon interface, then a packet
/// per [`packet`](PcapngWriter::packet).
pub struct PcapngWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the section header and the interface description.
    pub fn new(mut out: W) -> io::Result<Self> {
        // Section Header Block: magic, version 1.0, section length unknown.
        let mut shb = Vec::with_capacity(28);
        shb.extend(0x0A0D_0D0Au32.to_le_bytes());
        shb.extend(28u32.to_le_bytes());
        shb.extend(0x1A2B_3C4Du32.to_le_bytes());
        shb.extend(1u16.to_le_bytes());
        shb.extend(0u16.to_le_bytes());
        shb.extend(u64::MAX.to_le_bytes());
        shb.extend(28u32.to_le_bytes());
        out.write_all(&shb)?;
        // Interface Description Block: link type, no snap length limit;
        // timestamps in microseconds (the default resolution).
        let mut idb = Vec::with_capacity(20);
        idb.extend(1u32.to_le_bytes());
        idb.extend(20u32.to_le_bytes());
        idb.extend(LINKTYPE_USBMON_MMAPPED.to_le_bytes());
        idb.extend(0u16.to_le_bytes());
        idb.extend(0u32.to_le_bytes());
        idb.extend(20u32.to_le_bytes());
        out.write_all(&idb)?;
        out.flush()?;
        Ok(PcapngWriter { out })
    }

    /// Writes one Enhanced Packet Block holding `data`, stamped `time_us`
    /// (microseconds since the Unix epoch).
    pub fn packet(&mut self, time_us: u64, data: &[u8]) -> io::Result<()> {
        let padded = data.len().div_ceil(4) * 4;
        let len = u32::try_from(32 + padded)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "packet too long"))?;
        let mut block = Vec::with_capacity(len as usize);
        block.extend(6u32.to_le_bytes());
        block.extend(len.to_le_bytes());
        block.extend(0u32.to_le_bytes());
        block.extend(((time_us >> 32) as u32).to_le_bytes());
        block.extend((time_us as u32).to_le_bytes());
        block.extend((data.len() as u32).to_le_bytes());
        block.extend((data.len() as u32).to_le_bytes());
        block.extend_from_slice(data);
        block.resize(28 + padded, 0);
        block.extend(len.to_le_bytes());
        self.out.write_all(&block)?;
        // Flushed per packet: a capture is readable while it is written,
        // and complete up to the last transfer if the program is killed.
        self.out.flush()
    }
}

/// One usbmon event as the 64-byte mmapped header plus its data
/// (Linux `Documentation/usb/usbmon.rst`, `struct usbmon_packet`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbmonEvent<'a> {
    /// Ties a submission to its completion.
    pub id: u64,
    /// `b'S'` or `b'C'`.
    pub event: u8,
    /// 1 interrupt, 2 control, 3 bulk.
    pub transfer: u8,
    /// Endpoint address, 0x80 set for IN.
    pub endpoint: u8,
    /// Device address.
    pub device: u8,
    /// Bus number.
    pub bus: u16,
    /// The setup packet of a control submission.
    pub setup: Option<[u8; 8]>,
    /// 0, `-EINPROGRESS` for submissions, or a negative errno.
    pub status: i32,
    /// The URB's length (requested, or transferred at completion).
    pub length: u32,
    /// The data carried by this event.
    pub data: &'a [u8],
    /// Microseconds since the Unix epoch.
    pub time_us: u64,
}

impl UsbmonEvent<'_> {
    /// The record: header, then data.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut r = Vec::with_capacity(64 + self.data.len());
        r.extend(self.id.to_le_bytes());
        r.push(self.event);
        r.push(self.transfer);
        r.push(self.endpoint);
        r.push(self.device);
        r.extend(self.bus.to_le_bytes());
        r.push(if self.setup.is_some() { 0 } else { b'-' });
        r.push(if self.data.is_empty() {
            if self.endpoint & 0x80 != 0 {
                b'<'
            } else {
                b'>'
            }
        } else {
            0
        });
        r.extend((self.time_us / 1_000_000).to_le_bytes());
        r.extend(((self.time_us % 1_000_000) as u32).to_le_bytes());
        r.extend(self.status.to_le_bytes());
        r.extend(self.length.to_le_bytes());
        r.extend((self.data.len() as u32).to_le_bytes());
        r.extend(self.setup.unwrap_or_default());
        r.extend(0i32.to_le_bytes()); // interval
        r.extend(0i32.to_le_bytes()); // start_frame
        r.extend(0u32.to_le_bytes()); // xfer_flags
        r.extend(0u32.to_le_bytes()); // ndesc
        r.extend_from_slice(self.data);
        r
    }
}

struct Sink<W: Write> {
    writer: PcapngWriter<W>,
    next_id: u64,
    failed: bool,
}

/// A [`Transport`] that records what passes through it into a pcapng
/// capture (see the module documentation).
pub struct CapturingTransport<W: Write + Send> {
    inner: Arc<dyn Transport>,
    sink: Mutex<Sink<W>>,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A usbmon-style negative errno for a failed transfer.
fn errno_of(error: &TransportError) -> i32 {
    match error {
        TransportError::Timeout => -110,
        TransportError::Stall => -32,
        TransportError::Cancelled => -104,
        TransportError::DeviceGone => -19,
        _ => -71,
    }
}

impl<W: Write + Send> CapturingTransport<W> {
    /// Wraps `inner`, writing the capture to `out`, which starts with the
    /// device's descriptors.
    pub fn new(inner: Arc<dyn Transport>, out: W) -> io::Result<Self> {
        let writer = PcapngWriter::new(out)?;
        let capture = CapturingTransport {
            inner,
            sink: Mutex::new(Sink {
                writer,
                next_id: 1,
                failed: false,
            }),
        };
        capture.write_descriptors()?;
        Ok(capture)
    }

    /// Writes one submission/completion pair.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        transfer: u8,
        endpoint: u8,
        setup: Option<[u8; 8]>,
        out_data: &[u8],
        in_data: &[u8],
        requested: usize,
        status: i32,
        submitted_us: u64,
    ) -> io::Result<()> {
        let info = self.inner.info();
        let mut sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        let id = sink.next_id;
        sink.next_id += 1;
        let base = UsbmonEvent {
            id,
            event: b'S',
            transfer,
            endpoint,
            device: info.address,
            bus: u16::from(info.bus),
            setup,
            status: IN_PROGRESS,
            length: requested as u32,
            data: out_data,
            time_us: submitted_us,
        };
        let completion = UsbmonEvent {
            event: b'C',
            setup: None,
            status,
            length: (out_data.len() + in_data.len()) as u32,
            data: in_data,
            time_us: now_us().max(submitted_us),
            ..base.clone()
        };
        let written = sink
            .writer
            .packet(base.time_us, &base.to_bytes())
            .and_then(|()| {
                sink.writer
                    .packet(completion.time_us, &completion.to_bytes())
            });
        if written.is_err() {
            sink.failed = true;
        }
        written
    }

    /// GET_DESCRIPTOR(DEVICE) and GET_DESCRIPTOR(CONFIGURATION), answered
    /// with the device's descriptors (made from what the transport knows
    /// when the backend could not read them).
    fn write_descriptors(&self) -> io::Result<()> {
        let info = self.inner.info();
        let device = device_descriptor(info);
        let configuration = if info.configuration_descriptor.is_empty() {
            emit_configuration(&InterfaceDescription {
                number: info.interface_number,
                class: info.interface_class,
                extra: info.class_descriptor.clone().unwrap_or_default(),
                endpoints: info
                    .endpoints
                    .map(|e| {
                        let mut list = vec![(e.bulk_out, 2u8), (e.bulk_in, 2u8)];
                        list.extend(e.interrupt_in.map(|i| (i, 3u8)));
                        list.into_iter()
                            .map(
                                |(ep, attributes)| ferroccid::descriptors::EndpointDescription {
                                    address: ep.address,
                                    attributes,
                                    max_packet_size: ep.max_packet_size,
                                },
                            )
                            .collect()
                    })
                    .unwrap_or_default(),
                ..Default::default()
            })
        } else {
            info.configuration_descriptor.clone()
        };
        for (kind, answer) in [(1u8, &device[..]), (2u8, &configuration[..])] {
            let len = answer.len() as u16;
            let [lo, hi] = len.to_le_bytes();
            let setup = [0x80, 0x06, 0x00, kind, 0x00, 0x00, lo, hi];
            self.record(
                XFER_CONTROL,
                0x80,
                Some(setup),
                &[],
                answer,
                answer.len(),
                0,
                now_us(),
            )?;
        }
        Ok(())
    }
}

/// An 18-byte device descriptor from what the transport knows: class 0
/// (per interface), one configuration, 64-byte control endpoint.
fn device_descriptor(info: &TransportInfo) -> [u8; 18] {
    let [v0, v1] = info.vendor_id.to_le_bytes();
    let [p0, p1] = info.product_id.to_le_bytes();
    let [b0, b1] = info.bcd_device.to_le_bytes();
    [
        18, 1, 0x10, 0x01, 0, 0, 0, 64, v0, v1, p0, p1, b0, b1, 0, 0, 0, 1,
    ]
}

impl<W: Write + Send> Transport for CapturingTransport<W> {
    fn info(&self) -> &TransportInfo {
        self.inner.info()
    }

    fn bulk_out(&self, message: &[u8], timeout: Duration) -> Result<(), TransportError> {
        let submitted = now_us();
        let result = self.inner.bulk_out(message, timeout);
        let endpoint = self.endpoint(|e| e.bulk_out.address, 0x01);
        let status = result.as_ref().map_or_else(errno_of, |()| 0);
        let _ = self.record(
            XFER_BULK,
            endpoint,
            None,
            message,
            &[],
            message.len(),
            status,
            submitted,
        );
        result
    }

    fn bulk_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        let submitted = now_us();
        let result = self.inner.bulk_in(buf, timeout);
        if let Ok(n) = result {
            let endpoint = self.endpoint(|e| e.bulk_in.address, 0x82);
            let _ = self.record(
                XFER_BULK,
                endpoint,
                None,
                &[],
                &buf[..n],
                buf.len(),
                0,
                submitted,
            );
        }
        result
    }

    fn interrupt_in(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        let submitted = now_us();
        let result = self.inner.interrupt_in(buf, timeout);
        if let Ok(n) = result {
            let endpoint = self.endpoint(|e| e.interrupt_in.map_or(0x83, |i| i.address), 0x83);
            let _ = self.record(
                XFER_INTERRUPT,
                endpoint,
                None,
                &[],
                &buf[..n],
                buf.len(),
                0,
                submitted,
            );
        }
        result
    }

    fn control_in(
        &self,
        request: u8,
        value: u16,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, TransportError> {
        let submitted = now_us();
        let result = self.inner.control_in(request, value, buf, timeout);
        let setup = class_setup(
            0xA1,
            request,
            value,
            self.info().interface_number,
            buf.len(),
        );
        let (status, data) = match &result {
            Ok(n) => (0, &buf[..*n]),
            Err(e) => (errno_of(e), &buf[..0]),
        };
        let _ = self.record(
            XFER_CONTROL,
            0x80,
            Some(setup),
            &[],
            data,
            buf.len(),
            status,
            submitted,
        );
        result
    }

    fn control_out(
        &self,
        request: u8,
        value: u16,
        data: &[u8],
        timeout: Duration,
    ) -> Result<(), TransportError> {
        let submitted = now_us();
        let result = self.inner.control_out(request, value, data, timeout);
        let setup = class_setup(
            0x21,
            request,
            value,
            self.info().interface_number,
            data.len(),
        );
        let status = result.as_ref().map_or_else(errno_of, |()| 0);
        let _ = self.record(
            XFER_CONTROL,
            0x00,
            Some(setup),
            data,
            &[],
            data.len(),
            status,
            submitted,
        );
        result
    }

    fn cancel(&self) {
        self.inner.cancel();
    }

    fn reset_cancel(&self) {
        self.inner.reset_cancel();
    }
}

impl<W: Write + Send> CapturingTransport<W> {
    /// Whether writing the capture failed at some point (the transfers
    /// themselves went through regardless).
    pub fn write_failed(&self) -> bool {
        self.sink
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .failed
    }

    fn endpoint(&self, pick: impl Fn(&ferroccid::CcidEndpoints) -> u8, default: u8) -> u8 {
        self.inner.info().endpoints.as_ref().map_or(default, pick)
    }
}

/// A class request's setup packet (wIndex = the interface).
fn class_setup(request_type: u8, request: u8, value: u16, interface: u8, len: usize) -> [u8; 8] {
    let [v0, v1] = value.to_le_bytes();
    let [l0, l1] = (len.min(usize::from(u16::MAX)) as u16).to_le_bytes();
    [request_type, request, v0, v1, interface, 0, l0, l1]
}

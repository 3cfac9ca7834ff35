//! APDU → T=0 TPDU mapping (ISO/IEC 7816-3 §12.2, ISO/IEC 7816-4:1995
//! Annex A), driven against scripted card answers.

use ferroccid_protocols::t0::{get_response_cla, T0Apdu, T0Error, T0Options, T0Step, MAX_TPDU_LEN};

/// Runs `command` against a scripted card: each `script` row is the TPDU
/// the helper must send and the card's answer to it. Returns the response
/// APDU or the error, and checks the helper stops exactly at the script's
/// end.
fn exchange(
    command: &[u8],
    options: T0Options,
    response_capacity: usize,
    script: &[(&[u8], &[u8])],
) -> Result<Vec<u8>, T0Error> {
    let mut response = vec![0u8; response_capacity];
    let mut apdu = T0Apdu::new(command, &mut response, options)?;
    let mut tx = [0u8; MAX_TPDU_LEN];
    let mut last = None;
    for (i, (expected_tpdu, answer)) in script.iter().enumerate() {
        let tpdu = apdu.next_tpdu(&mut tx)?.expect("a TPDU is due");
        assert_eq!(tpdu, *expected_tpdu, "TPDU #{i}");
        match apdu.handle_response(answer) {
            Ok(T0Step::SendNext) => continue,
            Ok(T0Step::Complete(len)) => {
                assert_eq!(i, script.len() - 1, "completed before the script ended");
                last = Some(len);
                break;
            }
            Err(e) => {
                assert_eq!(i, script.len() - 1, "failed before the script ended");
                return Err(e);
            }
        }
    }
    let len = last.expect("script ended while the helper still wanted to send");
    assert_eq!(apdu.next_tpdu(&mut tx), Ok(None));
    Ok(response[..len].to_vec())
}

const AUTO: T0Options = T0Options::AUTOMATIC;

#[test]
fn case_1_gets_p3_00() {
    let r = exchange(
        &[0x00, 0x70, 0x80, 0x01],
        AUTO,
        16,
        &[(&[0x00, 0x70, 0x80, 0x01, 0x00], &[0x90, 0x00])],
    );
    assert_eq!(r.unwrap(), [0x90, 0x00]);
}

#[test]
fn case_2s_p3_is_le() {
    let r = exchange(
        &[0x00, 0x84, 0x00, 0x00, 0x04],
        AUTO,
        16,
        &[(&[0x00, 0x84, 0x00, 0x00, 0x04], &[1, 2, 3, 4, 0x90, 0x00])],
    );
    assert_eq!(r.unwrap(), [1, 2, 3, 4, 0x90, 0x00]);
}

#[test]
fn case_2s_6c_resends_with_la() {
    // Annex A case 2S.3: 6C La → same header with P3 = La.
    let r = exchange(
        &[0x00, 0xB0, 0x00, 0x00, 0x00],
        AUTO,
        300,
        &[
            (&[0x00, 0xB0, 0x00, 0x00, 0x00], &[0x6C, 0x03]),
            (&[0x00, 0xB0, 0x00, 0x00, 0x03], &[7, 8, 9, 0x90, 0x00]),
        ],
    );
    assert_eq!(r.unwrap(), [7, 8, 9, 0x90, 0x00]);
}

#[test]
fn case_2s_6c_with_la_above_le_keeps_le_bytes() {
    // Le = 2, the card says La = 4: Annex A keeps the first Le bytes.
    let r = exchange(
        &[0x00, 0xB0, 0x00, 0x00, 0x02],
        AUTO,
        16,
        &[
            (&[0x00, 0xB0, 0x00, 0x00, 0x02], &[0x6C, 0x04]),
            (&[0x00, 0xB0, 0x00, 0x00, 0x04], &[1, 2, 3, 4, 0x90, 0x00]),
        ],
    );
    assert_eq!(r.unwrap(), [1, 2, 0x90, 0x00]);
}

#[test]
fn case_2s_transparent_returns_6c_and_61() {
    let opts = T0Options::TRANSPARENT;
    let r = exchange(
        &[0x00, 0xB0, 0x00, 0x00, 0x00],
        opts,
        16,
        &[(&[0x00, 0xB0, 0x00, 0x00, 0x00], &[0x6C, 0x03])],
    );
    assert_eq!(r.unwrap(), [0x6C, 0x03]);
    let r = exchange(
        &[0x00, 0xB0, 0x00, 0x00, 0x00],
        opts,
        16,
        &[(&[0x00, 0xB0, 0x00, 0x00, 0x00], &[0x61, 0x10])],
    );
    assert_eq!(r.unwrap(), [0x61, 0x10]);
}

#[test]
fn case_3s_p3_is_lc_and_data_follows() {
    let r = exchange(
        &[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00],
        AUTO,
        16,
        &[(&[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00], &[0x90, 0x00])],
    );
    assert_eq!(r.unwrap(), [0x90, 0x00]);
}

#[test]
fn case_4s_goes_as_case_3_then_get_response() {
    // SELECT by AID with Le = 00: the card answers 61 05, GET RESPONSE with
    // P3 = 05 fetches the FCI.
    let r = exchange(
        &[0x00, 0xA4, 0x04, 0x00, 0x02, 0xA0, 0x00, 0x00],
        AUTO,
        64,
        &[
            (&[0x00, 0xA4, 0x04, 0x00, 0x02, 0xA0, 0x00], &[0x61, 0x05]),
            (
                &[0x00, 0xC0, 0x00, 0x00, 0x05],
                &[0x6F, 3, 0x84, 1, 0xA0, 0x90, 0x00],
            ),
        ],
    );
    assert_eq!(r.unwrap(), [0x6F, 3, 0x84, 1, 0xA0, 0x90, 0x00]);
}

#[test]
fn chained_61xx_collects_until_9000() {
    // Extended Le = 0000 (Ne = 65536) goes out as P3 = 00; 61 00 means 256
    // more bytes: GET RESPONSE P3 = 00, then 61 02, then 2 more (Annex A
    // case 2E.2).
    let first: Vec<u8> = (0..=255u8).chain([0x61, 0x02]).collect();
    let r = exchange(
        &[0x00, 0xCA, 0x01, 0x00, 0x00, 0x00, 0x00],
        AUTO,
        300,
        &[
            (&[0x00, 0xCA, 0x01, 0x00, 0x00], &[0x61, 0x00]),
            (&[0x00, 0xC0, 0x00, 0x00, 0x00], &first),
            (&[0x00, 0xC0, 0x00, 0x00, 0x02], &[0xAA, 0xBB, 0x90, 0x00]),
        ],
    )
    .unwrap();
    assert_eq!(r.len(), 256 + 2 + 2);
    assert_eq!(&r[..256], &(0..=255u8).collect::<Vec<_>>()[..]);
    assert_eq!(&r[256..], &[0xAA, 0xBB, 0x90, 0x00]);
}

#[test]
fn get_response_never_asks_for_more_than_ne() {
    // Case 4S with Le = 10 (Ne = 16): the card offers 32 bytes (61 20);
    // GET RESPONSE asks for min(Ne, 0x20) = 16.
    let data: Vec<u8> = (0..16u8).chain([0x90, 0x00]).collect();
    let r = exchange(
        &[0x00, 0x88, 0x00, 0x00, 0x02, 0xAB, 0xCD, 0x10],
        AUTO,
        300,
        &[
            (&[0x00, 0x88, 0x00, 0x00, 0x02, 0xAB, 0xCD], &[0x61, 0x20]),
            (&[0x00, 0xC0, 0x00, 0x00, 0x10], &data),
        ],
    )
    .unwrap();
    assert_eq!(r, data);

    // Short Le = 00 (Ne = 256): once 256 bytes are in, a further 61 02 is
    // handed to the caller, who asked for no more than 256.
    let first: Vec<u8> = (0..=255u8).chain([0x61, 0x02]).collect();
    let r = exchange(
        &[0x00, 0xCA, 0x01, 0x00, 0x00],
        AUTO,
        300,
        &[
            (&[0x00, 0xCA, 0x01, 0x00, 0x00], &[0x61, 0x00]),
            (&[0x00, 0xC0, 0x00, 0x00, 0x00], &first),
        ],
    )
    .unwrap();
    assert_eq!(r, first);
}

#[test]
fn case_4s_9000_without_61xx_has_no_data() {
    let r = exchange(
        &[0x00, 0x20, 0x00, 0x81, 0x02, 0x31, 0x32, 0x00],
        AUTO,
        16,
        &[(&[0x00, 0x20, 0x00, 0x81, 0x02, 0x31, 0x32], &[0x90, 0x00])],
    );
    assert_eq!(r.unwrap(), [0x90, 0x00]);
}

#[test]
fn case_4s_warning_and_error_are_mapped_unchanged() {
    for sw in [[0x63, 0xC2], [0x62, 0x83], [0x6A, 0x82]] {
        let r = exchange(
            &[0x00, 0xA4, 0x04, 0x00, 0x01, 0xA0, 0x00],
            AUTO,
            16,
            &[(&[0x00, 0xA4, 0x04, 0x00, 0x01, 0xA0], &sw)],
        );
        assert_eq!(r.unwrap(), sw);
    }
}

#[test]
fn case_4s_6c_on_the_case_3_tpdu_is_not_resent() {
    // P3 was Lc there; resending with P3 = La would corrupt the command.
    let r = exchange(
        &[0x00, 0xA4, 0x04, 0x00, 0x01, 0xA0, 0x00],
        AUTO,
        16,
        &[(&[0x00, 0xA4, 0x04, 0x00, 0x01, 0xA0], &[0x6C, 0x10])],
    );
    assert_eq!(r.unwrap(), [0x6C, 0x10]);
}

#[test]
fn get_response_6c_is_resent_as_get_response() {
    let r = exchange(
        &[0x00, 0xA4, 0x04, 0x00, 0x01, 0xA0, 0x00],
        AUTO,
        300,
        &[
            (&[0x00, 0xA4, 0x04, 0x00, 0x01, 0xA0], &[0x61, 0x00]),
            (&[0x00, 0xC0, 0x00, 0x00, 0x00], &[0x6C, 0x01]),
            (&[0x00, 0xC0, 0x00, 0x00, 0x01], &[0x42, 0x90, 0x00]),
        ],
    );
    assert_eq!(r.unwrap(), [0x42, 0x90, 0x00]);
}

#[test]
fn get_response_stays_on_the_logical_channel() {
    // First interindustry: channel bits b2b1 kept, SM (b4b3) dropped.
    assert_eq!(get_response_cla(0x00), 0x00);
    assert_eq!(get_response_cla(0x03), 0x03);
    assert_eq!(get_response_cla(0x0C), 0x00);
    assert_eq!(get_response_cla(0x1D), 0x01); // chaining bit b5 dropped
                                              // Further interindustry: channel 4 + b4..b1, SM b6 and chaining b5 dropped.
    assert_eq!(get_response_cla(0x40), 0x40);
    assert_eq!(get_response_cla(0x7F), 0x4F);
    // Proprietary (GSM 11.11 class A0) keeps its class.
    assert_eq!(get_response_cla(0xA0), 0xA0);
    let r = exchange(
        &[0x01, 0xB0, 0x00, 0x00, 0x00],
        AUTO,
        16,
        &[
            (&[0x01, 0xB0, 0x00, 0x00, 0x00], &[0x61, 0x01]),
            (&[0x01, 0xC0, 0x00, 0x00, 0x01], &[0x42, 0x90, 0x00]),
        ],
    );
    assert_eq!(r.unwrap(), [0x42, 0x90, 0x00]);
}

#[test]
fn extended_forms_shorten_or_need_envelope() {
    // Case 3E with Lc = 2 travels as case 3S.
    let r = exchange(
        &[0x00, 0xD6, 0, 0, 0x00, 0x00, 0x02, 1, 2],
        AUTO,
        16,
        &[(&[0x00, 0xD6, 0, 0, 0x02, 1, 2], &[0x90, 0x00])],
    );
    assert_eq!(r.unwrap(), [0x90, 0x00]);
    // Case 2E with Ne = 300 > 256: P3 = 00.
    let r = exchange(
        &[0x00, 0xB0, 0, 0, 0x00, 0x01, 0x2C],
        AUTO,
        16,
        &[(&[0x00, 0xB0, 0, 0, 0x00], &[0x6A, 0x82])],
    );
    assert_eq!(r.unwrap(), [0x6A, 0x82]);
    // Case 2E with Ne = 16: P3 = 10.
    let r = exchange(
        &[0x00, 0xB0, 0, 0, 0x00, 0x00, 0x10],
        AUTO,
        16,
        &[(&[0x00, 0xB0, 0, 0, 0x10], &[0x6A, 0x82])],
    );
    assert_eq!(r.unwrap(), [0x6A, 0x82]);
    // Lc = 256 cannot fit P3.
    let mut big = vec![0x00, 0xD6, 0, 0, 0x00, 0x01, 0x00];
    big.extend([0u8; 256]);
    let mut resp = [0u8; 4];
    assert_eq!(
        T0Apdu::new(&big, &mut resp, AUTO).err(),
        Some(T0Error::NeedsEnvelope { lc: 256 })
    );
}

#[test]
fn endless_61xx_ends_with_an_error() {
    // A card that answers 61 01 with one byte forever, into a large buffer.
    let mut response = vec![0u8; 70_000];
    let mut apdu = T0Apdu::new(&[0x00, 0xCA, 0, 0, 0x00], &mut response, AUTO).unwrap();
    let mut tx = [0u8; MAX_TPDU_LEN];
    let mut rounds = 0;
    let err = loop {
        apdu.next_tpdu(&mut tx).unwrap().unwrap();
        let answer: &[u8] = if rounds == 0 {
            &[0x61, 0x01]
        } else {
            &[0x55, 0x61, 0x01]
        };
        match apdu.handle_response(answer) {
            Ok(T0Step::SendNext) => rounds += 1,
            Ok(T0Step::Complete(_)) => panic!("completed"),
            Err(e) => break e,
        }
        assert!(rounds <= 1000, "no bound on GET RESPONSE");
    };
    assert_eq!(err, T0Error::TooManyGetResponses);
    assert_eq!(rounds, T0Apdu::MAX_GET_RESPONSES as usize);
}

#[test]
fn endless_61xx_into_a_small_buffer_ends_full() {
    let body = [0x11u8; 256];
    let mut with_sw = body.to_vec();
    with_sw.extend([0x61, 0x00]);
    let r = exchange(
        &[0x00, 0xCA, 0, 0, 0x00],
        AUTO,
        100,
        &[
            (&[0x00, 0xCA, 0, 0, 0x00], &[0x61, 0x00]),
            // Only 98 bytes of data fit with SW1 SW2 in 100.
            (&[0x00, 0xC0, 0, 0, 98], &[0x61, 0x00]),
            (&[0x00, 0xC0, 0, 0, 98], &{
                let mut v = vec![0x22u8; 98];
                v.extend([0x61, 0x00]);
                v
            }),
        ],
    );
    assert_eq!(r, Err(T0Error::ResponseBufferFull));
}

#[test]
fn endless_6cxx_ends_with_an_error() {
    let mut script: Vec<(&[u8], &[u8])> = vec![(&[0x00, 0xB0, 0, 0, 0x00], &[0x6C, 0x05])];
    for _ in 0..3 {
        script.push((&[0x00, 0xB0, 0, 0, 0x05], &[0x6C, 0x05]));
    }
    assert_eq!(
        exchange(&[0x00, 0xB0, 0, 0, 0x00], AUTO, 16, &script),
        Err(T0Error::TooManyResends)
    );
}

#[test]
fn malformed_responses_and_misuse() {
    let mut resp = [0u8; 16];
    let mut apdu = T0Apdu::new(&[0x00, 0x84, 0, 0, 0x02], &mut resp, AUTO).unwrap();
    assert_eq!(
        apdu.handle_response(&[0x90]),
        Err(T0Error::ResponseTooShort)
    );
    assert_eq!(
        apdu.handle_response(&[0x90, 0x00]),
        Err(T0Error::NotAwaitingResponse)
    );

    let mut apdu = T0Apdu::new(&[0x00, 0x84, 0, 0, 0x02], &mut resp, AUTO).unwrap();
    assert_eq!(
        apdu.handle_response(&[1, 2, 3, 0x90, 0x00]),
        Err(T0Error::TooMuchData {
            expected: 2,
            received: 3
        })
    );
    // Data on a case 3 TPDU.
    let mut apdu = T0Apdu::new(&[0x00, 0xD6, 0, 0, 0x01, 0x00], &mut resp, AUTO).unwrap();
    assert_eq!(
        apdu.handle_response(&[1, 0x90, 0x00]),
        Err(T0Error::TooMuchData {
            expected: 0,
            received: 1
        })
    );

    // TPDU buffer too small for header + data.
    let apdu = T0Apdu::new(&[0x00, 0xD6, 0, 0, 0x02, 1, 2], &mut resp, AUTO).unwrap();
    let mut small = [0u8; 6];
    assert_eq!(
        apdu.next_tpdu(&mut small),
        Err(T0Error::TpduBufferTooSmall { needed: 7 })
    );

    // INS 6X/9X and CLA FF.
    assert_eq!(
        T0Apdu::new(&[0x00, 0x6A, 0, 0], &mut resp, AUTO).err(),
        Some(T0Error::InvalidIns(0x6A))
    );
    assert!(T0Apdu::new(&[0xFF, 0xA4, 0, 0], &mut resp, AUTO).is_err());

    // A response buffer without room for SW1 SW2.
    let mut one = [0u8; 1];
    let mut apdu = T0Apdu::new(&[0x00, 0x70, 0, 0], &mut one, AUTO).unwrap();
    assert_eq!(
        apdu.handle_response(&[0x90, 0x00]),
        Err(T0Error::ResponseBufferFull)
    );
}

#[test]
fn get_response_asks_only_for_what_fits() {
    // 16-byte buffer: 14 data bytes + SW1 SW2, so 61 00 becomes P3 = 0E.
    let mut answer = vec![0x33u8; 14];
    answer.extend([0x90, 0x00]);
    let r = exchange(
        &[0x00, 0xCA, 0, 0, 0x00],
        AUTO,
        16,
        &[
            (&[0x00, 0xCA, 0, 0, 0x00], &[0x61, 0x00]),
            (&[0x00, 0xC0, 0, 0, 0x0E], &answer),
        ],
    );
    assert_eq!(r.unwrap(), answer);
}

#[test]
fn endless_6cxx_and_empty_61xx_alternating_end_within_the_documented_bound() {
    // The worst card for the helper: every TPDU that expects data gets
    // 6C 05 until the resend cap, then 61 05 without data, which starts a
    // GET RESPONSE series that it treats the same way. The two caps
    // compose: at most (MAX_GET_RESPONSES + 1) × (MAX_RESENDS + 1) TPDUs.
    let bound =
        (usize::from(T0Apdu::MAX_GET_RESPONSES) + 1) * (usize::from(T0Apdu::MAX_RESENDS) + 1);
    let mut response = vec![0u8; 70_000];
    let mut apdu = T0Apdu::new(&[0x00, 0xCA, 0, 0, 0x00], &mut response, AUTO).unwrap();
    let mut tx = [0u8; MAX_TPDU_LEN];
    let mut tpdus = 0usize;
    let mut sixty_c_in_a_row = 0u8;
    let err = loop {
        apdu.next_tpdu(&mut tx).unwrap().expect("a TPDU is due");
        tpdus += 1;
        let answer: &[u8] = if sixty_c_in_a_row < T0Apdu::MAX_RESENDS {
            sixty_c_in_a_row += 1;
            &[0x6C, 0x05]
        } else {
            sixty_c_in_a_row = 0;
            &[0x61, 0x05]
        };
        match apdu.handle_response(answer) {
            Ok(T0Step::SendNext) => {}
            Ok(T0Step::Complete(_)) => panic!("completed"),
            Err(e) => break e,
        }
        assert!(tpdus <= 100_000, "no bound on TPDUs");
    };
    assert_eq!(err, T0Error::TooManyGetResponses);
    assert_eq!(tpdus, bound);
}

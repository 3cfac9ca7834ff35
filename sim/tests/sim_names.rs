//! `sim` and `sim:PROFILE` names reach the simulator only through the
//! resolver the driver exposes (`ferroccid::register_resolver`):
//! the driver itself knows nothing of the simulator.
use ferroccid::open;
use ferroccid::DeviceName;
use ferroccid_sim::profile::Profile;
use ferroccid_sim::SimHandle;

/// The GemPC Twin's class descriptor (54 bytes), as `sim:` takes it packed in hex.
const GEMPC_TWIN: [u8; 54] = [
    0x36, 0x21, 0x00, 0x01, 0x00, 0x07, 0x03, 0x00, 0x00, 0x00, 0xA0, 0x0F, 0x00, 0x00, 0xA0, 0x0F,
    0x00, 0x00, 0x00, 0x00, 0x2A, 0x00, 0x00, 0x16, 0x40, 0x05, 0x00, 0x00, 0xFE, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x02, 0x01, 0x00, 0x0F, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
];

#[test]
fn sim_names_do_not_open_before_the_simulator_registers() {
    // Each integration test file is its own process: nothing registered yet.
    assert!(
        open("sim").is_err(),
        "the driver alone cannot open sim names"
    );
    ferroccid_sim::register();
    let opened = open("sim").unwrap();
    assert!(opened.handle::<SimHandle>().is_some());
    assert_eq!(opened.transport.info().interface_class, 0x0B);
    let opened = open("sim:short-apdu").unwrap();
    assert!(opened.handle::<SimHandle>().is_some());
    assert!(opened.handle::<String>().is_none(), "another type");
}

#[test]
fn parsed_sim_names_open_their_profile() {
    let packed: String = GEMPC_TWIN
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let DeviceName::Registered {
        scheme,
        spec: Some(spec),
    } = DeviceName::parse(&format!("sim:{packed}")).unwrap()
    else {
        panic!("a registered scheme's name")
    };
    assert_eq!(scheme, ferroccid_sim::names::SCHEME);
    let spec = ferroccid_sim::names::profile_spec(&spec).expect("a descriptor in hex");
    let profile = Profile::parse(&spec).expect("the packed descriptor is a profile");
    assert_eq!(profile.descriptor, GEMPC_TWIN);
}

mod support;

fn main() {
    let h = support::Harness::from_args("ccid_wire");
    h.finish();
}

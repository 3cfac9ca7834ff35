mod support;

fn main() {
    let h = support::Harness::from_args("multi_slot");
    h.finish();
}

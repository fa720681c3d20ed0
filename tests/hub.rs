//! Models from the Hugging Face hub, against the mock hub (tools/hub/mock-hub.mjs, run with
//! node): packages converted from hub repositories are byte-identical to those converted from the
//! fixture directories; the revision is pinned to one commit; 429 / 503 answers are retried, a
//! dropped connection resumes with a Range request, a corrupt blob is fetched again (and named
//! when it stays corrupt); the caches are reused; missing, private and gated repositories give
//! their messages; the token never reaches the LFS origin; an unsupported architecture is refused
//! from the headers alone; converted package repositories are downloaded and verified.
#![cfg(feature = "cli")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use spatial_mllm_web::native::hub::{model_source, parse_repo_id, HubClient, HubError, ModelSource, RepoId, RetryPolicy};
use spatial_mllm_web::weights::convert::{convert, ConvertOptions};
use spatial_mllm_web::weights::manifest::DEFAULT_SHARD_BYTES;
use spatial_mllm_web::weights::package::Package;
use spatial_mllm_web::weights::policy::Policy;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// The mock hub in a child process; killed on drop.
struct Hub {
    child: Child,
    url: String,
    lfs: String,
}

impl Hub {
    /// `repos`: ID=DIR[,token=T][,gated] specs. Node is required: without it the tests fail.
    fn start(repos: &[String]) -> Hub {
        assert!(Command::new("node").arg("--version").output().is_ok(), "node is not installed: the hub tests need it (bash tools/setup.sh test)");
        let mut cmd = Command::new("node");
        cmd.arg(root().join("tools/hub/mock-hub.mjs"));
        for r in repos {
            cmd.args(["--repo", r]);
        }
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("node starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("the mock hub's first line");
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("mock hub said {line:?}: {e}"));
        Hub { child, url: v["url"].as_str().unwrap().into(), lfs: v["lfsUrl"].as_str().unwrap().into() }
    }

    fn faults(&self, json: Value) {
        ureq::post(&format!("{}/_mock/faults", self.url)).send_string(&json.to_string()).expect("faults accepted");
    }

    fn requests(&self) -> Vec<Value> {
        let text = ureq::get(&format!("{}/_mock/requests", self.url)).call().unwrap().into_string().unwrap();
        serde_json::from_str::<Vec<Value>>(&text).unwrap()
    }

    fn clear_faults(&self) {
        ureq::delete(&format!("{}/_mock/faults", self.url)).call().unwrap();
    }

    fn clear(&self) {
        ureq::delete(&format!("{}/_mock/requests", self.url)).call().unwrap();
    }

    /// The commit `main` of a repository resolves to.
    fn commit(&self, id: &str, token: Option<&str>) -> String {
        let mut r = ureq::get(&format!("{}/api/models/{id}", self.url));
        if let Some(t) = token {
            r = r.set("Authorization", &format!("Bearer {t}"));
        }
        let v: Value = serde_json::from_str(&r.call().unwrap().into_string().unwrap()).unwrap();
        v["sha"].as_str().unwrap().to_string()
    }

    fn client(&self, cache: &Path, token: Option<&str>) -> HubClient {
        let mut c = HubClient::new(format!("{}/", self.url), token.map(str::to_string), cache.join("hub"));
        c.retry = RetryPolicy { attempts: 6, base: Duration::from_millis(20), max_wait: Duration::from_secs(2) };
        c
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spec(id: &str, dir: &Path) -> String {
    format!("{id}={}", dir.display())
}

fn paths(r: &[Value]) -> Vec<String> {
    r.iter().map(|x| format!("{} {} {} {}", x["origin"], x["method"], x["path"], x["range"])).collect()
}

/// File requests (resolve or LFS), not API calls.
fn file_requests(r: &[Value]) -> Vec<&Value> {
    r.iter().filter(|x| x["path"].as_str().is_some_and(|p| p.contains("/resolve/") || p.starts_with("/lfs/"))).collect()
}

/// Every file of `a` and `b` (recursively) the same, byte for byte.
fn assert_same_dirs(a: &Path, b: &Path) {
    let list = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    };
    let (la, lb) = (list(a), list(b));
    assert_eq!(la, lb, "{} and {} hold different files", a.display(), b.display());
    for f in la {
        let (pa, pb) = (a.join(&f), b.join(&f));
        if pa.is_dir() {
            assert_same_dirs(&pa, &pb);
        } else {
            assert!(std::fs::read(&pa).unwrap() == std::fs::read(&pb).unwrap(), "{} differs from {}", pa.display(), pb.display());
        }
    }
}

fn direct(fixture_dir: &Path, dst: &Path) {
    let opts = ConvertOptions { policy: Policy::default(), max_shard: DEFAULT_SHARD_BYTES };
    convert(fixture_dir, dst, &opts, &mut |_| {}).unwrap();
}

#[test]
fn hub_repositories_convert_byte_identical_pinned_and_cached() {
    let repos = [("Test/qwen", "qwen2.5-vl"), ("Test/vggt", "vggt"), ("Test/spatial-v1.0", "spatial-mllm-v1.0"), ("Test/spatial-v1.1", "spatial-mllm-v1.1")];
    let specs: Vec<String> = repos.iter().map(|(id, f)| spec(id, &fixture(f))).collect();
    let hub = Hub::start(&specs);
    let tmp = tempfile::tempdir().unwrap();
    let client = hub.client(tmp.path(), None);
    for (id, f) in repos {
        hub.clear();
        let commit = hub.commit(id, None);
        hub.clear();
        let repo = parse_repo_id(id).unwrap();
        let dir = client.ensure_package(&repo, &tmp.path().join("packages"), &mut |_| {}).unwrap();
        assert_eq!(dir, tmp.path().join("packages/packages").join(id.replace('/', "--")).join(&commit));
        let reference = tmp.path().join("direct").join(f);
        direct(&fixture(f), &reference);
        assert_same_dirs(&dir, &reference);
        Package::open(&dir).unwrap().verify().unwrap();
        // Pinned: one API call by name, every file by the commit, the snapshot named by it.
        let log = hub.requests();
        let api: Vec<&Value> = log.iter().filter(|x| x["path"].as_str().unwrap().starts_with("/api/")).collect();
        assert!(api.iter().all(|x| x["path"].as_str().unwrap().contains("/revision/main?blobs=true")), "{:?}", paths(&log));
        for r in file_requests(&log) {
            let p = r["path"].as_str().unwrap();
            assert!(p.starts_with("/lfs/") || p.starts_with(&format!("/{id}/resolve/{commit}/")), "not by commit: {p}");
        }
        let repo_cache = tmp.path().join("hub").join(format!("models--{}", id.replace('/', "--")));
        assert!(repo_cache.join("snapshots").join(&commit).join("model.safetensors").is_file());
        assert_eq!(std::fs::read_to_string(repo_cache.join("refs/main")).unwrap(), commit);
        // The file from the hub cache is the fixture's.
        assert!(
            std::fs::read(repo_cache.join("snapshots").join(&commit).join("model.safetensors")).unwrap()
                == std::fs::read(fixture(f).join("model.safetensors")).unwrap()
        );

        // Again: the package cache answers, with no file request.
        hub.clear();
        let again = client.ensure_package(&repo, &tmp.path().join("packages"), &mut |_| {}).unwrap();
        assert_eq!(again, dir);
        let log = hub.requests();
        assert!(file_requests(&log).is_empty(), "second run downloaded: {:?}", paths(&log));

        // A fresh package cache: converted again from the hub cache, nothing downloaded.
        hub.clear();
        let other = client.ensure_package(&repo, &tmp.path().join("packages2"), &mut |_| {}).unwrap();
        assert_same_dirs(&other, &reference);
        let log = hub.requests();
        assert!(file_requests(&log).is_empty(), "the hub cache was not used: {:?}", paths(&log));
    }
    // Offline, or the hub unreachable: the package of the commit `main` last resolved to.
    let commit = hub.commit("Test/qwen", None);
    let qwen = parse_repo_id("Test/qwen").unwrap();
    let expected = tmp.path().join("packages/packages/Test--qwen").join(&commit);
    let mut offline = hub.client(tmp.path(), None);
    offline.offline = true;
    assert_eq!(offline.ensure_package(&qwen, &tmp.path().join("packages"), &mut |_| {}).unwrap(), expected);
    let err = offline.ensure_package(&qwen, &tmp.path().join("empty"), &mut |_| {}).unwrap_err();
    assert!(matches!(err, HubError::Offline { .. }), "{err}");
    let mut dead = HubClient::new("http://127.0.0.1:9", None, tmp.path().join("hub"));
    dead.retry = RetryPolicy { attempts: 2, base: Duration::from_millis(10), max_wait: Duration::from_secs(1) };
    assert_eq!(dead.ensure_package(&qwen, &tmp.path().join("packages"), &mut |_| {}).unwrap(), expected);
    // By commit: `ID@COMMIT` resolves to the same snapshot.
    let snap = client.download(&parse_repo_id(&format!("Test/qwen@{commit}")).unwrap(), &mut |_| {}).unwrap();
    assert_eq!(snap.info.commit, commit);
}

#[test]
fn retries_resume_and_corruption() {
    let hub = Hub::start(&[spec("Test/qwen", &fixture("qwen2.5-vl"))]);
    let weights = std::fs::read(fixture("qwen2.5-vl/model.safetensors")).unwrap();
    let repo = parse_repo_id("Test/qwen").unwrap();

    // 503 on the API, 429 on a small file, a connection dropped in the weights.
    let tmp = tempfile::tempdir().unwrap();
    hub.faults(serde_json::json!([
        {"match": "/api/models/Test/qwen", "status": 503, "times": 2},
        {"match": "/config.json", "status": 429, "retryAfter": 0, "times": 2},
        {"match": "/lfs/", "dropAfter": 100000, "times": 1},
    ]));
    let mut retries = 0;
    let snap = hub.client(tmp.path(), None).download(&repo, &mut |p| {
        if let spatial_mllm_web::native::hub::HubProgress::Retry { .. } = p {
            retries += 1
        }
    });
    let snap = snap.unwrap();
    assert_eq!(retries, 5, "2 x 503, 2 x 429, 1 drop");
    assert!(std::fs::read(snap.dir.join("model.safetensors")).unwrap() == weights);
    let log = hub.requests();
    let lfs: Vec<&Value> = log.iter().filter(|x| x["origin"] == "lfs" && x["method"] == "GET").collect();
    let resumed: Vec<u64> = lfs.iter().filter_map(|x| x["range"].as_str()?.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok()).collect();
    assert_eq!(resumed.len(), 1, "one resumed request: {:?}", paths(&log));
    assert!(resumed[0] > 0 && resumed[0] <= 100000, "resumed at {}", resumed[0]);
    assert_eq!(log.iter().filter(|x| x["path"].as_str().unwrap().ends_with("/config.json") && x["method"] == "GET").count(), 3);

    // A partial file left by an earlier run is resumed, and hashed with the rest.
    let tmp = tempfile::tempdir().unwrap();
    let blobs = tmp.path().join("hub/models--Test--qwen/blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    let sha = "50d8599e2b5b83f4f532b4728e267139bd79b281feb8020e4c2f600b738ab57b";
    std::fs::write(blobs.join(format!("{sha}.incomplete")), &weights[..5000]).unwrap();
    hub.clear();
    let snap = hub.client(tmp.path(), None).download(&repo, &mut |_| {}).unwrap();
    assert!(std::fs::read(snap.dir.join("model.safetensors")).unwrap() == weights);
    let log = hub.requests();
    assert!(log.iter().any(|x| x["origin"] == "lfs" && x["range"] == "bytes=5000-"), "{:?}", paths(&log));
    assert!(!blobs.join(format!("{sha}.incomplete")).exists());

    // A blob corrupted once is fetched again.
    let tmp = tempfile::tempdir().unwrap();
    hub.clear();
    hub.faults(serde_json::json!({"match": "model.safetensors", "corrupt": true, "times": 1}));
    let snap = hub.client(tmp.path(), None).download(&repo, &mut |_| {}).unwrap();
    assert!(std::fs::read(snap.dir.join("model.safetensors")).unwrap() == weights);
    let log = hub.requests();
    let blob_gets = log.iter().filter(|x| x["origin"] == "lfs" && x["method"] == "GET" && x["range"].is_null()).count();
    assert_eq!(blob_gets, 2, "{:?}", paths(&log));

    // Corrupted always: an error naming the file and both hashes; nothing left in the cache.
    let tmp = tempfile::tempdir().unwrap();
    hub.faults(serde_json::json!({"match": "model.safetensors", "corrupt": true, "times": "Infinity"}));
    let err = hub.client(tmp.path(), None).download(&repo, &mut |_| {}).unwrap_err();
    assert!(matches!(err, HubError::Corrupt { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("model.safetensors") && msg.contains("Test/qwen") && msg.contains("50d8599e2b5b83f4"), "{msg}");
    let blobs = tmp.path().join("hub/models--Test--qwen/blobs");
    assert!(!std::fs::read_dir(&blobs).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().starts_with("50d8599e")), "a corrupt blob was kept");
    hub.clear_faults();

    // Persistent 503: reported with the URL and the status after the attempts.
    let tmp = tempfile::tempdir().unwrap();
    hub.faults(serde_json::json!({"match": "/api/", "status": 503, "times": 10}));
    let err = hub.client(tmp.path(), None).download(&repo, &mut |_| {}).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, HubError::Http { status: Some(503), attempts: 6, .. }), "{msg}");
    assert!(msg.contains("/api/models/Test/qwen/revision/main"), "{msg}");
}

#[test]
fn errors_and_tokens() {
    let vggt = fixture("vggt");
    let hub = Hub::start(&[
        spec("Test/qwen", &fixture("qwen2.5-vl")),
        format!("Test/private={},token=hf_secret", vggt.display()),
        format!("Test/gated={},gated,token=hf_ok", vggt.display()),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let err = |id: &str, token: Option<&str>| {
        let e = hub.client(tmp.path(), token).download(&parse_repo_id(id).unwrap(), &mut |_| {}).unwrap_err();
        (e.to_string(), e)
    };
    let (msg, e) = err("Test/nope", None);
    assert!(matches!(e, HubError::RepoNotFound { .. }) && msg.contains("Test/nope") && msg.contains("HF_ENDPOINT"), "{msg}");
    let (msg, e) = err("Test/qwen@v9", None);
    assert!(matches!(e, HubError::RevisionNotFound { .. }) && msg.contains("\"v9\""), "{msg}");
    let (msg, e) = err("Test/private", None);
    assert!(matches!(e, HubError::Access { status: 401, gated: false, .. }), "{msg}");
    assert!(msg.contains("private") && msg.contains("HF_TOKEN") && msg.contains(&format!("{}/settings/tokens", hub.url)), "{msg}");
    let (msg, e) = err("Test/private", Some("hf_wrong"));
    assert!(matches!(e, HubError::Access { status: 403, gated: false, .. }), "{msg}");
    let (msg, e) = err("Test/gated", Some("hf_wrong"));
    assert!(matches!(e, HubError::Access { status: 403, gated: true, .. }), "{msg}");
    assert!(msg.contains("gated") && msg.contains("licence") && msg.contains(&format!("{}/Test/gated", hub.url)), "{msg}");
    let (msg, e) = err("Test/gated", None);
    assert!(matches!(e, HubError::Access { status: 401, gated: true, .. }) && msg.contains("HF_TOKEN"), "{msg}");

    // With the token: downloaded; the token went to the hub and never to the LFS origin.
    hub.clear();
    let snap = hub.client(tmp.path(), Some("hf_secret")).download(&parse_repo_id("Test/private").unwrap(), &mut |_| {}).unwrap();
    assert!(std::fs::read(snap.dir.join("model.safetensors")).unwrap() == std::fs::read(vggt.join("model.safetensors")).unwrap());
    let log = hub.requests();
    assert!(log.iter().any(|x| x["origin"] == "lfs"), "{:?}", paths(&log));
    for r in &log {
        match r["origin"].as_str().unwrap() {
            "hub" => assert_eq!(r["auth"], "Bearer hf_secret", "{r}"),
            _ => assert!(r["auth"].is_null(), "the token reached the LFS origin: {r}"),
        }
    }
    let _ = &hub.lfs;
}

#[test]
fn unsupported_architecture_is_refused_from_the_headers() {
    let tmp = tempfile::tempdir().unwrap();
    let bert = tmp.path().join("bert");
    std::fs::create_dir_all(&bert).unwrap();
    std::fs::write(bert.join("config.json"), r#"{"architectures": ["BertModel"], "model_type": "bert"}"#).unwrap();
    let data = vec![0u8; 256 * 1024 * 4];
    let tensors = [
        ("encoder.layer.0.weight", safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1024, 256], &data).unwrap()),
        ("embeddings.word_embeddings.weight", safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1024, 256], &data).unwrap()),
    ];
    safetensors::serialize_to_file(tensors, None, &bert.join("model.safetensors")).unwrap();
    std::fs::copy(fixture("qwen2.5-vl/tokenizer.json"), bert.join("tokenizer.json")).unwrap();
    let hub = Hub::start(&[spec("Test/bert", &bert)]);
    let cache = tmp.path().join("cache");
    let err = hub.client(&cache, None).ensure_package(&parse_repo_id("Test/bert").unwrap(), &cache, &mut |_| {}).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, HubError::Unsupported { .. }) && msg.contains("BertModel") && msg.contains("Qwen2.5-VL"), "{msg}");
    let log = hub.requests();
    let weights: Vec<&Value> = log.iter().filter(|x| x["path"].as_str().unwrap().contains("model.safetensors")).collect();
    assert!(!weights.is_empty());
    for r in &weights {
        let range = r["range"].as_str().unwrap_or_else(|| panic!("a weights request without a range: {r}"));
        let end: u64 = range.rsplit('-').next().unwrap().parse().unwrap();
        assert!(end < 4096, "more than the header requested: {r}");
    }
    assert!(log.iter().all(|x| !x["path"].as_str().unwrap().contains("tokenizer.json")), "side files downloaded before the check");
}

#[test]
fn package_repositories_and_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("pkg");
    let out =
        Command::new(env!("CARGO_BIN_EXE_spatial-mllm")).args(["convert", fixture("spatial-mllm-v1.1").to_str().unwrap(), pkg.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let hub = Hub::start(&[spec("Test/spatial-pkg", &pkg), spec("Test/vggt", &fixture("vggt"))]);

    // A converted package repository: downloaded and verified as it is.
    let cache = tmp.path().join("cache");
    let dir = hub.client(&cache, None).ensure_package(&parse_repo_id("Test/spatial-pkg").unwrap(), &cache, &mut |_| {}).unwrap();
    assert_same_dirs(&dir, &pkg);
    Package::open(&dir).unwrap().verify().unwrap();
    let log = hub.requests();
    assert!(log.iter().any(|x| x["path"].as_str().unwrap().contains("shard-00000.safetensors")), "{:?}", paths(&log));

    // The command line, configured by the environment as huggingface_hub is.
    let env_cli = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_spatial-mllm"));
        c.args(args)
            .env("HF_ENDPOINT", &hub.url)
            .env("HF_HOME", tmp.path().join("hf"))
            .env("SPATIAL_MLLM_CACHE", tmp.path().join("sm"))
            .env_remove("HF_TOKEN")
            .env_remove("HUGGING_FACE_HUB_TOKEN")
            .env_remove("HF_HUB_CACHE")
            .env_remove("HUGGINGFACE_HUB_CACHE");
        c.output().unwrap()
    };
    let out_dir = tmp.path().join("vggt-from-hub");
    let out = env_cli(&["convert", "Test/vggt", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reference = tmp.path().join("vggt-direct");
    direct(&fixture("vggt"), &reference);
    assert_same_dirs(&out_dir, &reference);
    let commit = hub.commit("Test/vggt", None);
    assert!(tmp.path().join("hf/hub/models--Test--vggt/snapshots").join(&commit).join("model.safetensors").is_file());
    // A package repository through `convert`: copied and verified.
    let out_dir = tmp.path().join("pkg-from-hub");
    let out = env_cli(&["convert", "Test/spatial-pkg", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_same_dirs(&out_dir, &pkg);
    // Errors: the exit code of their class (3 the model, 2 bad input) and the message.
    let out = env_cli(&["convert", "Test/missing", tmp.path().join("x").to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("repository Test/missing not found"), "{stderr}");
    let out = env_cli(&["convert", "not a repo", tmp.path().join("y").to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code() == Some(2) && stderr.contains("neither an existing local path"), "{stderr}");
    // The token file under HF_HOME is read.
    std::fs::write(tmp.path().join("hf/token"), "hf_from_file\n").unwrap();
    hub.clear();
    let _ = env_cli(&["convert", "Test/vggt@main", tmp.path().join("z").to_str().unwrap()]);
    let log = hub.requests();
    assert!(log.iter().any(|x| x["auth"] == "Bearer hf_from_file"), "{:?}", log);
}

#[test]
fn repo_ids() {
    assert_eq!(parse_repo_id("Qwen/Qwen2.5-VL-3B-Instruct"), Some(RepoId { id: "Qwen/Qwen2.5-VL-3B-Instruct".into(), revision: None }));
    let r = parse_repo_id("Diankun/Spatial-MLLM-v1.1-Instruct-135K@refs/pr/1").unwrap();
    assert_eq!((r.id.as_str(), r.revision()), ("Diankun/Spatial-MLLM-v1.1-Instruct-135K", "refs/pr/1"));
    assert_eq!(r.folder(), "Diankun--Spatial-MLLM-v1.1-Instruct-135K");
    for bad in ["qwen", "a/b/c", "/b", "a/", "a/b@", "a b/c", "./x", "../x/y", "a/b c", "org/-x"] {
        assert_eq!(parse_repo_id(bad), None, "{bad}");
    }
    assert!(matches!(model_source(root().join("Cargo.toml").to_str().unwrap()), Ok(ModelSource::Local(_))));
    assert!(matches!(model_source("facebook/VGGT-1B"), Ok(ModelSource::Hub(_))));
    assert!(matches!(model_source("no-such-dir"), Err(HubError::BadId { .. })));
    #[cfg(unix)]
    assert!(spatial_mllm_web::native::hub::cache::free_space(&root().join("no/such/dir")).is_some_and(|b| b > 0));
    let e = HubError::DiskFull { path: "/x".into(), needed: 7_500_000_000, available: Some(1_200_000_000) };
    assert!(e.to_string().contains("needs 7.5 GB, 1.2 GB are free"), "{e}");
}

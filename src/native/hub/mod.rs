//! Models straight from the Hugging Face hub: `ORG/NAME[@REVISION]` ids resolved to one commit,
//! files downloaded (resumable, verified, retried) into huggingface_hub's cache layout, original
//! checkpoints' conversion planned from their headers (architecture, tensors, shapes) before the
//! weights are fetched, then converted once into the package cache
//! (`$SPATIAL_MLLM_CACHE/packages/{org}--{name}/{commit}/`). Repositories that already hold a
//! converted package (`manifest.json`) are downloaded and verified instead.
//!
//! Environment, as huggingface_hub: `HF_ENDPOINT` (default https://huggingface.co), `HF_TOKEN`
//! or `HUGGING_FACE_HUB_TOKEN` (else the file `$HF_HOME/token`), `HF_HUB_CACHE` or `HF_HOME`
//! (default `~/.cache/huggingface`). The token is sent to the hub's origin only.

pub mod cache;
pub mod client;
pub mod error;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use client::{HubClient, RepoFile, RepoInfo, RetryPolicy, Tally};
pub use error::{HResult, HubError};

use crate::weights::conversion::{ConversionPlan, TOKENIZER};
use crate::weights::convert::{convert, ConvertOptions};
use crate::weights::source::{header_len, SourceFile};
use crate::weights::PackageError;
use crate::weights::manifest::{Manifest, DEFAULT_SHARD_BYTES, MANIFEST};
use crate::weights::package::Package;
use crate::weights::policy::Policy;
use cache::link_or_copy;
use error::io_err;

pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Small files fetched with a checkpoint when the repository has them.
const SIDE_FILES: [&str; 5] = ["tokenizer.json", "generation_config.json", "preprocessor_config.json", "tokenizer_config.json", "chat_template.json"];

/// What a download or conversion is doing.
pub enum HubProgress<'a> {
    /// A step, in words.
    Message(&'a str),
    /// Files about to be downloaded (those not in the cache) and their bytes.
    Plan { files: usize, bytes: u64 },
    /// Bytes downloaded so far of all planned files.
    Bytes { file: &'a str, done: u64, total: u64 },
    /// A failed request about to be tried again.
    Retry { url: &'a str, attempt: u32, wait: Duration, why: &'a str },
    /// Converting: tensors (or parts) done of the total.
    Convert { done: usize, total: usize, name: &'a str },
}

/// `ORG/NAME` at an optional revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoId {
    pub id: String,
    pub revision: Option<String>,
}

impl RepoId {
    pub fn revision(&self) -> &str {
        self.revision.as_deref().unwrap_or("main")
    }
    /// `org--name`.
    pub fn folder(&self) -> String {
        self.id.replace('/', "--")
    }
}

/// `ORG/NAME` or `ORG/NAME@REV` (a branch, tag or commit); names as the hub allows them.
pub fn parse_repo_id(s: &str) -> Option<RepoId> {
    let (id, revision) = match s.split_once('@') {
        Some((id, rev)) if !rev.is_empty() && !rev.contains(char::is_whitespace) => (id, Some(rev.to_string())),
        Some(_) => return None,
        None => (s, None),
    };
    let (org, name) = id.split_once('/')?;
    let ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 96
            && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && !p.starts_with(['-', '.'])
            && !p.ends_with('.')
            && !p.contains("--")
            && !p.contains("..")
    };
    (ok(org) && ok(name)).then(|| RepoId { id: id.to_string(), revision })
}

/// A `--model` argument: an existing local path, else a hub id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelSource {
    Local(PathBuf),
    Hub(RepoId),
}

pub fn model_source(arg: &str) -> HResult<ModelSource> {
    let p = Path::new(arg);
    if p.exists() {
        return Ok(ModelSource::Local(p.to_path_buf()));
    }
    parse_repo_id(arg).map(ModelSource::Hub).ok_or_else(|| HubError::BadId { arg: arg.to_string() })
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn home() -> PathBuf {
    env("HOME").or_else(|| env("USERPROFILE")).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."))
}

/// `$HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
pub fn hf_home() -> PathBuf {
    env("HF_HOME").map(PathBuf::from).unwrap_or_else(|| env("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| home().join(".cache")).join("huggingface"))
}

/// `$HF_HUB_CACHE` (or the older `$HUGGINGFACE_HUB_CACHE`), else `$HF_HOME/hub`.
pub fn hub_cache_dir() -> PathBuf {
    env("HF_HUB_CACHE").or_else(|| env("HUGGINGFACE_HUB_CACHE")).map(PathBuf::from).unwrap_or_else(|| hf_home().join("hub"))
}

/// `$HF_ENDPOINT` without a trailing slash, else the public hub.
pub fn endpoint() -> String {
    env("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.into()).trim_end_matches('/').to_string()
}

/// `$HF_TOKEN`, `$HUGGING_FACE_HUB_TOKEN`, else the token file (`$HF_TOKEN_PATH` or
/// `$HF_HOME/token`, as `huggingface-cli login` writes it).
pub fn token() -> Option<String> {
    env("HF_TOKEN").or_else(|| env("HUGGING_FACE_HUB_TOKEN")).map(|t| t.trim().to_string()).or_else(|| {
        let path = env("HF_TOKEN_PATH").map(PathBuf::from).unwrap_or_else(|| hf_home().join("token"));
        std::fs::read_to_string(path).ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
    })
}

/// Converted packages: `$SPATIAL_MLLM_CACHE`, else `$XDG_CACHE_HOME/spatial-mllm`, else
/// `~/.cache/spatial-mllm`.
pub fn package_cache_dir() -> PathBuf {
    env("SPATIAL_MLLM_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| env("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| home().join(".cache")).join("spatial-mllm"))
}

/// A repository downloaded at one commit.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub info: RepoInfo,
    /// `snapshots/{commit}` in the hub cache.
    pub dir: PathBuf,
    /// The repository holds a converted package (manifest.json) rather than a checkpoint.
    pub package: bool,
}

/// A package directory is complete: its manifest parses and every file it names is there with
/// the size the manifest gives (the shards' hashes are checked when the package is loaded).
pub fn package_complete(dir: &Path) -> bool {
    let Ok(p) = Package::open(dir) else { return false };
    let shards_ok = p.manifest.shards.iter().all(|s| std::fs::metadata(dir.join(&s.file)).is_ok_and(|m| m.len() == s.bytes));
    shards_ok && p.manifest.tokenizer.as_ref().is_none_or(|t| dir.join(t).is_file())
}

impl HubClient {
    /// From the environment, as huggingface_hub reads it.
    pub fn from_env() -> HubClient {
        let mut c = HubClient::new(endpoint(), token(), hub_cache_dir());
        c.offline = env("HF_HUB_OFFLINE").is_some_and(|v| ["1", "true", "yes", "on"].contains(&v.trim().to_ascii_lowercase().as_str()));
        c
    }

    /// The repository at its revision: downloads what a conversion needs (a checkpoint) or the
    /// whole package (a converted package), every file by the revision's commit.
    pub fn download(&self, repo: &RepoId, progress: &mut dyn FnMut(HubProgress)) -> HResult<Snapshot> {
        let info = self.repo_info(&repo.id, repo.revision(), progress)?;
        self.download_info(repo, info, progress)
    }

    fn fetch_all(&self, info: &RepoInfo, files: &[&RepoFile], progress: &mut dyn FnMut(HubProgress)) -> HResult<()> {
        let rc = cache::RepoCache::new(&self.cache, &info.id);
        let have = |p: PathBuf, f: &RepoFile| std::fs::metadata(p).is_ok_and(|m| m.is_file() && f.size.is_none_or(|s| m.len() == s));
        let missing: Vec<&&RepoFile> =
            files.iter().filter(|f| !have(rc.pointer(&info.commit, &f.path), f) && !f.etag().is_some_and(|e| have(rc.blob(e), f))).collect();
        let bytes: u64 = missing.iter().filter_map(|f| f.size).sum();
        // Room for what is left to download (partial files count as done).
        let partial: u64 =
            missing.iter().filter_map(|f| f.etag().and_then(|e| std::fs::metadata(rc.incomplete(e)).ok()).map(|m| m.len().min(f.size.unwrap_or(0)))).sum();
        let needed = bytes.saturating_sub(partial);
        if let Some(free) = cache::free_space(&rc.root) {
            if free < needed {
                return Err(HubError::DiskFull { path: self.cache.display().to_string(), needed, available: Some(free) });
            }
        }
        if !missing.is_empty() {
            progress(HubProgress::Plan { files: missing.len(), bytes });
        }
        let mut tally = Tally { done: 0, total: bytes };
        for f in files {
            self.fetch(info, f, &mut tally, progress)?;
        }
        Ok(())
    }

    /// One listed file (or a FileMissing error).
    fn need<'a>(&self, info: &'a RepoInfo, path: &str) -> HResult<&'a RepoFile> {
        info.file(path).ok_or_else(|| HubError::FileMissing {
            id: info.id.clone(),
            revision: info.revision.clone(),
            file: path.to_string(),
            endpoint: self.endpoint.clone(),
        })
    }

    fn read_json(&self, path: &Path) -> HResult<serde_json::Value> {
        let text = std::fs::read_to_string(path).map_err(io_err(path))?;
        serde_json::from_str(&text).map_err(|e| HubError::BadResponse { url: path.display().to_string(), msg: e.to_string() })
    }

    /// A safetensors file's header: from the cache if there, else by two Range requests (the
    /// 8-byte length, then the JSON).
    fn safetensors_header(&self, info: &RepoInfo, index: usize, file: &RepoFile, progress: &mut dyn FnMut(HubProgress)) -> HResult<SourceFile> {
        let rc = cache::RepoCache::new(&self.cache, &info.id);
        let local = rc.pointer(&info.commit, &file.path);
        let header: Vec<u8> = if local.is_file() {
            use std::io::Read;
            let mut f = std::fs::File::open(&local).map_err(io_err(&local))?;
            let mut len = [0u8; 8];
            f.read_exact(&mut len).map_err(io_err(&local))?;
            let mut h = vec![0u8; header_len(&file.path, &len)? as usize];
            f.read_exact(&mut h).map_err(io_err(&local))?;
            h
        } else {
            let n = header_len(&file.path, &self.read_range(info, &file.path, 0, 8, progress)?)?;
            if file.size.is_some_and(|s| n + 8 > s) {
                let msg = format!("not a safetensors file (header length {n})");
                return Err(HubError::BadResponse { url: self.file_url(info, &file.path), msg });
            }
            self.read_range(info, &file.path, 8, n, progress)?
        };
        Ok(SourceFile::parse(index, &file.path, &header)?)
    }

    fn download_info(&self, repo: &RepoId, info: RepoInfo, progress: &mut dyn FnMut(HubProgress)) -> HResult<Snapshot> {
        let rc = cache::RepoCache::new(&self.cache, &info.id);
        let dir = rc.snapshot(&info.commit);
        let mut tally = Tally { done: 0, total: 0 };
        let package = info.file(MANIFEST).is_some() && info.file("config.json").is_none();
        if package {
            progress(HubProgress::Message(&format!("{} @ {}: a converted package", info.id, &info.commit[..12])));
            let mpath = self.fetch(&info, self.need(&info, MANIFEST)?, &mut tally, progress)?;
            let text = std::fs::read_to_string(&mpath).map_err(io_err(&mpath))?;
            let m = Manifest::parse(&text, &format!("{}/{MANIFEST}", info.id))?;
            let mut names: Vec<&str> = m.shards.iter().map(|s| s.file.as_str()).collect();
            names.extend(m.tokenizer.as_deref());
            let files = names.iter().map(|n| self.need(&info, n)).collect::<HResult<Vec<_>>>()?;
            self.fetch_all(&info, &files, progress)?;
        } else {
            progress(HubProgress::Message(&format!("{} @ {}: a checkpoint", info.id, &info.commit[..12])));
            let config = match info.file("config.json") {
                Some(f) => Some(self.read_json(&self.fetch(&info, f, &mut tally, progress)?)?),
                None => None,
            };
            // The weights: from the index, else model.safetensors, else every top-level
            // .safetensors file (as the converter picks them).
            let index = "model.safetensors.index.json";
            let shards: Vec<&RepoFile> = if let Some(f) = info.file(index) {
                let v = self.read_json(&self.fetch(&info, f, &mut tally, progress)?)?;
                let map = v
                    .get("weight_map")
                    .and_then(|m| m.as_object())
                    .ok_or_else(|| HubError::BadResponse { url: self.file_url(&info, index), msg: "no weight_map".into() })?;
                let mut names: Vec<&str> = map.values().filter_map(|v| v.as_str()).collect();
                names.sort();
                names.dedup();
                names.iter().map(|n| self.need(&info, n)).collect::<HResult<_>>()?
            } else if let Some(f) = info.file("model.safetensors") {
                vec![f]
            } else {
                info.files.iter().filter(|f| !f.path.contains('/') && f.path.ends_with(".safetensors")).collect()
            };
            if shards.is_empty() {
                let files = info.files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>().join(", ");
                return Err(HubError::NoWeights { id: info.id.clone(), files });
            }
            // The whole conversion planned from the headers before any weight is downloaded: an
            // unsupported architecture, a missing tensor or a shape that contradicts the config
            // stops it here.
            progress(HubProgress::Message("reading the weights' headers"));
            let sources = shards.iter().enumerate().map(|(i, f)| self.safetensors_header(&info, i, f, progress)).collect::<HResult<Vec<_>>>()?;
            let config = config.unwrap_or_else(|| serde_json::json!({}));
            let has_tokenizer = info.file(TOKENIZER).is_some();
            match ConversionPlan::new(&info.id, sources, config, has_tokenizer, &Policy::default(), DEFAULT_SHARD_BYTES) {
                Err(PackageError::UnknownLayout { arch, sample, .. }) => return Err(HubError::Unsupported { id: info.id.clone(), architecture: arch, sample }),
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
            let mut files: Vec<&RepoFile> = SIDE_FILES.iter().filter_map(|n| info.file(n)).collect();
            files.extend(shards);
            self.fetch_all(&info, &files, progress)?;
        }
        rc.write_ref(repo.revision(), &info.commit)?;
        Ok(Snapshot { info, dir, package })
    }

    /// The converted package of a hub repository in the package cache `packages_root`
    /// (`packages/{org}--{name}/{commit}/`): reused when complete, else downloaded (and converted
    /// with the default policy from an original checkpoint), written to a temporary directory
    /// then renamed, so a half-written package is never used.
    pub fn ensure_package(&self, repo: &RepoId, packages_root: &Path, progress: &mut dyn FnMut(HubProgress)) -> HResult<PathBuf> {
        let parent = packages_root.join("packages").join(repo.folder());
        // Offline (HF_HUB_OFFLINE=1, or the hub unreachable): the package of the commit the
        // revision last resolved to, if complete.
        let cached = || {
            let rev = repo.revision();
            let commit = if rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit()) {
                Some(rev.to_string())
            } else {
                cache::RepoCache::new(&self.cache, &repo.id).read_ref(rev)
            };
            commit.map(|c| parent.join(c)).filter(|d| package_complete(d))
        };
        if self.offline {
            return cached().ok_or_else(|| HubError::Offline { id: repo.id.clone(), revision: repo.revision().to_string() });
        }
        let info = match self.repo_info(&repo.id, repo.revision(), progress) {
            Ok(info) => info,
            Err(e @ HubError::Http { status: None, .. }) => match cached() {
                Some(dir) => {
                    progress(HubProgress::Message(&format!("the hub is unreachable ({e}); using the cached package {}", dir.display())));
                    return Ok(dir);
                }
                None => return Err(e),
            },
            Err(e) => return Err(e),
        };
        let dst = parent.join(&info.commit);
        if package_complete(&dst) {
            return Ok(dst);
        }
        let snap = self.download_info(repo, info, progress)?;
        std::fs::create_dir_all(&parent).map_err(io_err(&parent))?;
        let tmp = parent.join(format!(".{}.partial-{}", snap.info.commit, std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let result = self.package_into(&snap, &tmp, None, progress);
        if let Err(e) = result {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        if dst.exists() {
            if package_complete(&dst) {
                let _ = std::fs::remove_dir_all(&tmp); // another process finished first
                return Ok(dst);
            }
            std::fs::remove_dir_all(&dst).map_err(io_err(&dst))?;
        }
        std::fs::rename(&tmp, &dst).map_err(io_err(&dst))?;
        Ok(dst)
    }

    /// A downloaded snapshot as a package in `dst`: converted (checkpoint; `opts` or the default
    /// policy with 128 MiB shards), or linked and verified (package).
    pub fn package_into(&self, snap: &Snapshot, dst: &Path, opts: Option<&ConvertOptions>, progress: &mut dyn FnMut(HubProgress)) -> HResult<()> {
        if snap.package {
            let m = Package::open(&snap.dir)?.manifest;
            std::fs::create_dir_all(dst).map_err(io_err(dst))?;
            let mut names: Vec<&str> = m.shards.iter().map(|s| s.file.as_str()).collect();
            names.extend(m.tokenizer.as_deref());
            for n in names {
                link_or_copy(&snap.dir.join(n), &dst.join(n))?;
            }
            progress(HubProgress::Message("verifying the package's shards"));
            // The manifest last: a directory without one is never taken for a package.
            let tmp_manifest = dst.join(format!("{MANIFEST}.tmp"));
            std::fs::copy(snap.dir.join(MANIFEST), &tmp_manifest).map_err(io_err(&tmp_manifest))?;
            std::fs::rename(&tmp_manifest, dst.join(MANIFEST)).map_err(io_err(dst))?;
            if let Err(e) = Package::open(dst).and_then(|p| p.verify()) {
                let _ = std::fs::remove_file(dst.join(MANIFEST));
                return Err(e.into());
            }
            return Ok(());
        }
        let default = ConvertOptions { policy: Policy::default(), max_shard: DEFAULT_SHARD_BYTES };
        let opts = opts.unwrap_or(&default);
        progress(HubProgress::Message("converting"));
        convert(&snap.dir, dst, opts, &mut |p| progress(HubProgress::Convert { done: p.done, total: p.total, name: p.name }))?;
        Ok(())
    }
}

/// A `--model` / `--vggt` argument as a package directory: a local path as it is; a hub id
/// downloaded and converted once into the package cache (environment as huggingface_hub's).
pub fn resolve_model(arg: &str, progress: &mut dyn FnMut(HubProgress)) -> HResult<PathBuf> {
    match model_source(arg)? {
        ModelSource::Local(p) => Ok(p),
        ModelSource::Hub(repo) => HubClient::from_env().ensure_package(&repo, &package_cache_dir(), progress),
    }
}

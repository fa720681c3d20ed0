//! Every WGSL variant the launchers of the kernel families can produce, assembled and validated
//! with naga on the CPU (no adapter): the entry points' workgroup sizes match their contracts, and
//! each entry uses exactly the storage slots the contract says it binds. The variants are written
//! to target/shader-variants/ (or $SHADER_VARIANTS_DIR) with a manifest, for tests/shaders/tint.mjs
//! to compile with Chrome's compiler (Tint, from the npm `webgpu` package).

use std::collections::BTreeMap;
use std::path::PathBuf;

use spatial_mllm_web::gpu::{Contract, DType, Variant};
use spatial_mllm_web::kernels::{all_launches, CONTRACTS};

fn out_dir() -> PathBuf {
    match std::env::var_os("SHADER_VARIANTS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/shader-variants"),
    }
}

/// One module: a family's variant, with the entry points launched from it.
struct Module {
    contract: &'static Contract,
    variant: Variant,
    entries: Vec<&'static str>,
}

/// Validates the module; returns the most workgroup memory (bytes) one of its entry points uses.
fn validate(m: &Module, code: &str) -> Result<u32, String> {
    let module = naga::front::wgsl::parse_str(code).map_err(|e| e.emit_to_string(code))?;
    let mut caps = naga::valid::Capabilities::default() | naga::valid::Capabilities::SHADER_FLOAT16 | naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32;
    // Only the native GEMM on matrix units may use cooperative matrices and subgroups.
    if native_only(&m.variant) {
        caps |= naga::valid::Capabilities::COOPERATIVE_MATRIX | naga::valid::Capabilities::SUBGROUP;
    }
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps).validate(&module).map_err(|e| e.emit_to_string(code))?;
    let mut workgroup_bytes = 0;
    for &entry in &m.entries {
        let Some(index) = module.entry_points.iter().position(|e| e.name == entry) else {
            return Err(format!("no entry point {entry}"));
        };
        let ep = &module.entry_points[index];
        let Some(want) = m.contract.entry(entry).workgroup(&m.variant) else {
            return Err(format!("{entry}: the variant builds no such entry point"));
        };
        if ep.workgroup_size != want {
            return Err(format!("{entry}: workgroup size {:?} in the shader, {want:?} in the contract", ep.workgroup_size));
        }
        // The storage globals the entry uses, against the slots the contract has it bind.
        let uses = info.get_entry_point(index);
        let mut used: Vec<(u32, String)> = module
            .global_variables
            .iter()
            .filter(|(h, g)| matches!(g.space, naga::AddressSpace::Storage { .. }) && !uses[*h].is_empty())
            .map(|(_, g)| (g.binding.as_ref().map_or(u32::MAX, |b| b.binding), g.name.clone().unwrap_or_default()))
            .collect();
        used.sort();
        let want: Vec<(u32, String)> = m.contract.active_slots(entry, &m.variant).into_iter().map(|(b, n)| (b, n.to_string())).collect();
        if used != want {
            return Err(format!("{entry}: uses storage {used:?}, the contract binds {want:?}"));
        }
        let shared: u32 = module
            .global_variables
            .iter()
            .filter(|(h, g)| g.space == naga::AddressSpace::WorkGroup && !uses[*h].is_empty())
            .map(|(_, g)| module.types[g.ty].inner.size(module.to_ctx()))
            .sum();
        // No portable launcher assumes more than the 32 KiB most GPUs offer (WebGPU guarantees
        // 16); the native matrix-unit tiles are sized against the device's own limit.
        if shared > MAX_WORKGROUP_BYTES && !native_only(&m.variant) {
            return Err(format!("{entry}: {shared} bytes of workgroup memory, more than {MAX_WORKGROUP_BYTES}"));
        }
        workgroup_bytes = workgroup_bytes.max(shared);
    }
    Ok(workgroup_bytes)
}

const MAX_WORKGROUP_BYTES: u32 = 32768;

/// A variant only native adapters can run (cooperative matrices: not in WebGPU).
fn native_only(v: &Variant) -> bool {
    v.flags.contains(&"COOP")
}

#[test]
fn every_variant_validates_with_naga() {
    // Group the launches by module (family and variant): a module holds every entry point.
    let mut modules: BTreeMap<(String, String), Module> = BTreeMap::new();
    let launches = all_launches();
    for l in &launches {
        let m = modules.entry((l.contract.name().to_string(), l.variant.key())).or_insert_with(|| Module {
            contract: l.contract,
            variant: l.variant.clone(),
            entries: Vec::new(),
        });
        if !m.entries.contains(&l.entry) {
            m.entries.push(l.entry);
        }
    }
    // Every family and entry point is reached, both activation types (only f16 for the entries
    // on matrix units, which take f16 inputs).
    for c in CONTRACTS {
        for e in c.entries {
            let of_entry = || launches.iter().filter(|l| std::ptr::eq(l.contract, c) && l.entry == e.name);
            let acts: &[DType] = if of_entry().next().is_some() && of_entry().all(|l| native_only(&l.variant)) { &[DType::F16] } else { &[DType::F32, DType::F16] };
            for &act in acts {
                let found = launches.iter().any(|l| std::ptr::eq(l.contract, c) && l.entry == e.name && l.variant.act == Some(act));
                assert!(found, "no launch of {}::{} with {act:?} activations", c.name(), e.name);
            }
        }
    }
    let dir = out_dir();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut manifest = Vec::new();
    let mut failures = Vec::new();
    let mut per_family: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, m) in modules.values().enumerate() {
        let code = m.contract.assemble(&m.variant);
        let file = format!("{i:04}-{}.wgsl", m.contract.name());
        std::fs::write(dir.join(&file), &code).unwrap();
        let workgroup_bytes = validate(m, &code).unwrap_or_else(|e| {
            failures.push(format!("{file} {}|{}: {e}", m.contract.name(), m.variant.key()));
            0
        });
        manifest.push(serde_json::json!({
            "file": file,
            "family": m.contract.name(),
            "variant": m.variant.key(),
            "f16": m.variant.act == Some(DType::F16),
            "native_only": native_only(&m.variant),
            "entries": m.entries,
            "workgroup_bytes": workgroup_bytes,
        }));
        *per_family.entry(m.contract.name()).or_default() += 1;
    }
    let doc = serde_json::json!({ "variants": manifest });
    std::fs::write(dir.join("manifest.json"), serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    println!("{} launches, {} modules in {}: {per_family:?}", launches.len(), modules.len(), dir.display());
    assert!(failures.is_empty(), "{} of {} variants fail naga validation:\n{}", failures.len(), modules.len(), failures.join("\n"));
    println!("naga: all {} variants valid", modules.len());
}

#[test]
fn contract_shaders_declare_no_bindings_or_workgroup_sizes() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut checked = 0;
    for f in std::fs::read_dir(&dir).unwrap() {
        let path = f.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        if path.extension().is_none_or(|e| e != "wgsl") {
            continue;
        }
        let code = std::fs::read_to_string(&path).unwrap();
        for (n, line) in code.lines().enumerate() {
            let code_part = line.split("//").next().unwrap();
            let literal_wg = code_part.split("@workgroup_size(").skip(1).any(|rest| rest.trim_start().starts_with(|c: char| c.is_ascii_digit()));
            assert!(!code_part.contains("@binding("), "{name}.wgsl:{}: a literal @binding (the contract declares bindings)", n + 1);
            assert!(!literal_wg, "{name}.wgsl:{}: a literal @workgroup_size (use the contract's <ENTRY>_WG_X/Y/Z)", n + 1);
            assert!(!code_part.contains("struct Params"), "{name}.wgsl:{}: a hand-written Params (the contract declares it)", n + 1);
        }
        checked += 1;
    }
    assert!(checked >= CONTRACTS.len(), "checked {checked} shader files");
}

#[test]
fn contracts_are_consistent() {
    for c in CONTRACTS {
        for (i, s) in c.slots.iter().enumerate() {
            assert!(c.slots[..i].iter().all(|o| o.name != s.name), "{}: slot {} declared twice", c.name(), s.name);
            for e in s.entries {
                assert!(c.entries.iter().any(|x| x.name == *e), "{}: slot {} names an unknown entry {e}", c.name(), s.name);
            }
        }
        assert!(c.src.code.contains("Declared by the contract"), "{}: its WGSL should say which declarations the contract emits", c.name());
    }
}

#[test]
#[should_panic(expected = "shader family norm: flag WEIGTH appears in no #ifdef")]
fn misspelt_flag_panics() {
    let norm = CONTRACTS.iter().find(|c| c.name() == "norm").unwrap();
    norm.assemble(&Variant::new(DType::F32).flag("REDUCE").constant("RED_N", 128).flag("WEIGTH"));
}

#[test]
#[should_panic(expected = "kernel norm: no storage slot \"W\"")]
fn unknown_slot_panics() {
    let norm = CONTRACTS.iter().find(|c| c.name() == "norm").unwrap();
    norm.binding("W");
}

//! Kernel contracts: a family's uniform struct, storage bindings and entry points (with their
//! workgroup sizes) declared once in Rust and emitted into its WGSL, so that the shader and its
//! launcher cannot disagree on a field, a binding index or a thread count.
//!
//! A family declares its `Params` with [`uniform_params!`](crate::uniform_params) and a
//! [`Contract`]; assembly prepends to the family's WGSL
//!
//! ```text
//! const NORM_WG_X: u32 = 128u; const NORM_WG_Y: u32 = 1u; const NORM_WG_Z: u32 = 1u;  (per entry)
//! struct Params { dim: u32, eps: f32, ... }
//! @group(0) @binding(0) var<uniform> P: Params;
//! @group(0) @binding(1) var<storage, read> X: array<Act>;  (the slots the variant's flags keep)
//! ```
//!
//! and the shader writes `@compute @workgroup_size(NORM_WG_X, NORM_WG_Y, NORM_WG_Z)`. Launchers
//! bind by slot name ([`Contract::bind`]) and size their grids from the entry ([`Entry::groups`]);
//! the recorder checks that a dispatch binds exactly the slots its entry point uses.
//! An entry whose workgroup size follows the variant (the GEMM core's tiling) declares it as a
//! function of the variant ([`Entry::per_variant`]); its constants are emitted per variant.

use std::sync::Arc;

use super::buffer::GpuBuffer;
use super::device::Gpu;
use super::pipelines::Pipeline;
use super::recorder::Binding;
use super::shader::{assemble_with, cond_holds, ShaderSource, Variant};
use super::tensor::{DType, Tensor};

/// A scalar a uniform struct may hold, with its WGSL name. Only 4-byte scalars: a struct of them
/// has the same layout in Rust (`repr(C)`) and in WGSL's uniform address space, with no padding.
pub trait WgslScalar: bytemuck::Pod {
    const WGSL: &'static str;
}
impl WgslScalar for u32 {
    const WGSL: &'static str = "u32";
}
impl WgslScalar for i32 {
    const WGSL: &'static str = "i32";
}
impl WgslScalar for f32 {
    const WGSL: &'static str = "f32";
}

/// A uniform struct declared with [`uniform_params!`](crate::uniform_params): its fields as
/// (name, WGSL type), in order.
pub trait UniformParams: bytemuck::Pod {
    const FIELDS: &'static [(&'static str, &'static str)];
}

/// Declare a kernel's uniform parameters once: the `repr(C)` Rust struct (Pod, all fields public)
/// and its WGSL field list. Fields are u32, i32 or f32; no hand padding (the recorder rounds a
/// uniform binding up to 16 bytes).
#[macro_export]
macro_rules! uniform_params {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
        $vis struct $name {
            $($(#[$fm])* pub $field: $ty,)*
        }
        impl $crate::gpu::UniformParams for $name {
            const FIELDS: &'static [(&'static str, &'static str)] = &[$((stringify!($field), <$ty as $crate::gpu::WgslScalar>::WGSL)),*];
        }
        const _: () = assert!(::std::mem::size_of::<$name>() == 4 * <$name as $crate::gpu::UniformParams>::FIELDS.len());
    };
}

/// How a storage slot is accessed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
    /// read_write when the condition (`#ifdef` syntax) holds, read otherwise.
    ReadWriteIf(&'static str),
}

/// A storage binding of a family. Its binding index is its position among the family's slots + 1
/// (binding 0 is the uniform `P`).
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    /// The WGSL variable name, also the name launchers bind by.
    pub name: &'static str,
    /// The WGSL type, e.g. `array<Act>`, `array<u32>`, `array<vec2<f32>>`.
    pub ty: &'static str,
    pub access: Access,
    /// Declared only when this holds: `A` (flag set), `A|B` (any), `!A|B` (none of them).
    pub when: Option<&'static str>,
    /// The entry points that use it (all when empty): an entry's pipeline (layout `auto`) binds
    /// only what the entry uses.
    pub entries: &'static [&'static str],
}

impl Slot {
    pub const fn read(name: &'static str, ty: &'static str) -> Slot {
        Slot { name, ty, access: Access::Read, when: None, entries: &[] }
    }
    pub const fn write(name: &'static str, ty: &'static str) -> Slot {
        Slot { access: Access::ReadWrite, ..Slot::read(name, ty) }
    }
    /// read_write when `cond` holds, read otherwise.
    pub const fn write_if(self, cond: &'static str) -> Slot {
        Slot { access: Access::ReadWriteIf(cond), ..self }
    }
    pub const fn when(self, cond: &'static str) -> Slot {
        Slot { when: Some(cond), ..self }
    }
    pub const fn only(self, entries: &'static [&'static str]) -> Slot {
        Slot { entries, ..self }
    }
}

/// A workgroup size as a function of the variant (None: the variant does not build the entry).
pub type WorkgroupOf = fn(&Variant) -> Option<[u32; 3]>;

/// A compute entry point and its workgroup size.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    pub name: &'static str,
    /// The workgroup size (unused when `wg_of` is set).
    pub wg: [u32; 3],
    /// The workgroup size as a function of the variant (the GEMM core: from its tiling constants),
    /// None for a variant that does not build this entry.
    pub wg_of: Option<WorkgroupOf>,
}

impl Entry {
    pub const fn new(name: &'static str, wg: [u32; 3]) -> Entry {
        Entry { name, wg, wg_of: None }
    }
    /// An entry whose workgroup size `wg_of` computes from the variant.
    pub const fn per_variant(name: &'static str, wg_of: WorkgroupOf) -> Entry {
        Entry { name, wg: [0; 3], wg_of: Some(wg_of) }
    }
    /// The workgroup size in `variant` (None: the variant does not build this entry).
    pub fn workgroup(&self, variant: &Variant) -> Option<[u32; 3]> {
        match self.wg_of {
            Some(f) => f(variant),
            None => Some(self.wg),
        }
    }
    /// Invocations per workgroup (of an entry with a fixed size).
    pub const fn threads(&self) -> u32 {
        self.wg[0] * self.wg[1] * self.wg[2]
    }
    /// Workgroups that cover `invocations` threads of a one-thread-per-item kernel.
    pub const fn groups(&self, invocations: u32) -> u32 {
        invocations.div_ceil(self.threads())
    }
    /// The WGSL constants' prefix: `flash_rows` → `FLASH_ROWS_WG`.
    fn const_prefix(&self) -> String {
        format!("{}_WG", self.name.to_ascii_uppercase())
    }
}

/// A family's interface: its WGSL source, uniform struct, storage slots and entry points.
#[derive(Debug)]
pub struct Contract {
    pub src: ShaderSource,
    pub params: &'static [(&'static str, &'static str)],
    pub slots: &'static [Slot],
    pub entries: &'static [Entry],
}

impl Contract {
    pub fn name(&self) -> &'static str {
        self.src.name
    }

    /// The entry point `name` (panics naming the family when it has none).
    pub fn entry(&self, name: &str) -> &Entry {
        self.entries.iter().find(|e| e.name == name).unwrap_or_else(|| panic!("kernel {}: no entry point {name:?}", self.src.name))
    }

    /// The binding index of slot `name` (panics naming the family and slot when it has none).
    pub fn binding(&self, name: &str) -> u32 {
        match self.slots.iter().position(|s| s.name == name) {
            Some(i) => i as u32 + 1,
            None => panic!("kernel {}: no storage slot {name:?}", self.src.name),
        }
    }

    /// Bind tensor `t` to slot `name`.
    pub fn bind<'a>(&self, name: &str, t: &'a Tensor) -> Binding<'a> {
        Binding::t(self.binding(name), t)
    }

    /// Bind buffer `buf` (a packed weight) to slot `name`.
    pub fn bind_buf<'a>(&self, name: &str, buf: &'a Arc<GpuBuffer>) -> Binding<'a> {
        Binding(self.binding(name), buf)
    }

    /// The slots (binding, name) a dispatch of `entry` in `variant` must bind: those declared for
    /// the variant's flags and used by the entry.
    pub fn active_slots(&self, entry: &str, variant: &Variant) -> Vec<(u32, &'static str)> {
        let flags = effective_flags(variant);
        self.entry(entry);
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.when.is_none_or(|c| cond_holds(c, &flags)) && (s.entries.is_empty() || s.entries.contains(&entry)))
            .map(|(i, s)| (i as u32 + 1, s.name))
            .collect()
    }

    /// The WGSL declarations this contract prepends to the family's source for `variant`.
    fn header(&self, variant: &Variant) -> String {
        let flags = effective_flags(variant);
        let mut out = String::new();
        for e in self.entries {
            let Some(wg) = e.workgroup(variant) else { continue };
            let p = e.const_prefix();
            out.push_str(&format!("const {p}_X: u32 = {}u;\nconst {p}_Y: u32 = {}u;\nconst {p}_Z: u32 = {}u;\n", wg[0], wg[1], wg[2]));
        }
        out.push_str("struct Params {\n");
        for (name, ty) in self.params {
            out.push_str(&format!("    {name}: {ty},\n"));
        }
        out.push_str("}\n@group(0) @binding(0) var<uniform> P: Params;\n");
        for (i, s) in self.slots.iter().enumerate() {
            if s.when.is_some_and(|c| !cond_holds(c, &flags)) {
                continue;
            }
            let rw = match s.access {
                Access::Read => false,
                Access::ReadWrite => true,
                Access::ReadWriteIf(c) => cond_holds(c, &flags),
            };
            let access = if rw { "read_write" } else { "read" };
            out.push_str(&format!("@group(0) @binding({}) var<storage, {access}> {}: {};\n", i + 1, s.name, s.ty));
        }
        out
    }

    /// The flags the slots' conditions mention (a variant may set them although no `#ifdef` does).
    fn slot_flags(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for s in self.slots {
            let conds = [s.when, if let Access::ReadWriteIf(c) = s.access { Some(c) } else { None }];
            for c in conds.into_iter().flatten() {
                out.extend(c.trim_start_matches('!').split('|').map(str::trim));
            }
        }
        out
    }

    /// The WGSL text of `variant` (panics when the variant sets a flag the family never tests).
    pub fn assemble(&self, variant: &Variant) -> String {
        assemble_with(&self.src, variant, &self.header(variant), &self.slot_flags())
    }
}

/// The variant's flags as the preprocessor sees them (`F16` added for f16 activations).
fn effective_flags(variant: &Variant) -> Vec<&'static str> {
    let mut flags = variant.flags.clone();
    if variant.act == Some(DType::F16) {
        flags.push("F16");
    }
    flags
}

/// One pipeline a launcher can ask for: family, entry point and variant. Launchers build theirs
/// from a choice value (`NormChoice`, ...) with the same function their enumerators use, so that
/// `crate::kernels::all_launches` lists every variant the launchers can produce.
#[derive(Clone, Debug)]
pub struct Launch {
    pub contract: &'static Contract,
    pub entry: &'static str,
    pub variant: Variant,
}

impl Launch {
    pub fn new(contract: &'static Contract, entry: &'static str, variant: Variant) -> Launch {
        Launch { contract, entry, variant }
    }
    /// The entry point's contract (workgroup size).
    pub fn entry(&self) -> &'static Entry {
        self.contract.entry(self.entry)
    }
    /// The entry point's workgroup size in this variant.
    pub fn workgroup(&self) -> [u32; 3] {
        self.entry().workgroup(&self.variant).unwrap_or_else(|| panic!("kernel {}: variant {} builds no {}", self.contract.name(), self.variant.key(), self.entry))
    }
    /// The compiled pipeline (cached by the device).
    pub fn pipeline(&self, gpu: &Gpu) -> Arc<Pipeline> {
        gpu.contract_pipeline(self.contract, self.entry, &self.variant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::uniform_params! {
        struct TestParams { n: u32, off: i32, scale: f32 }
    }

    static TEST: Contract = Contract {
        src: ShaderSource { name: "test", code: "#ifdef B\n#endif\n@compute @workgroup_size(MAIN_WG_X, MAIN_WG_Y, MAIN_WG_Z)\nfn main() {}\n", includes: &[] },
        params: TestParams::FIELDS,
        slots: &[
            Slot::read("X", "array<Act>").write_if("INPLACE"),
            Slot::write("Y", "array<f32>").when("!INPLACE"),
            Slot::read("Z", "array<u32>").when("B").only(&["other"]),
        ],
        entries: &[Entry::new("main", [64, 1, 1]), Entry::new("other", [8, 2, 1])],
    };

    #[test]
    fn header_and_slots() {
        let v = Variant::new(DType::F32);
        let code = TEST.assemble(&v);
        assert!(code.contains("struct Params {\n    n: u32,\n    off: i32,\n    scale: f32,\n}\n"), "{code}");
        assert!(code.contains("const OTHER_WG_Y: u32 = 2u;"));
        assert!(code.contains("@group(0) @binding(1) var<storage, read> X: array<Act>;"));
        assert!(code.contains("@group(0) @binding(2) var<storage, read_write> Y: array<f32>;"));
        assert!(!code.contains(" Z:"));
        let inplace = Variant::new(DType::F32).flag("INPLACE").flag("B");
        assert!(TEST.assemble(&inplace).contains("var<storage, read_write> X: array<Act>;"));
        assert_eq!(TEST.active_slots("main", &inplace), vec![(1, "X")]);
        assert_eq!(TEST.active_slots("other", &inplace), vec![(1, "X"), (3, "Z")]);
        assert_eq!(TEST.entry("other").threads(), 16);
        assert_eq!(TEST.entry("main").groups(65), 2);
    }

    #[test]
    #[should_panic(expected = "flag INPLCE")]
    fn misspelt_flag_panics() {
        TEST.assemble(&Variant::new(DType::F32).flag("INPLCE"));
    }
}

//! Shader assembly: one WGSL source per kernel family, variants generated from it. A variant sets
//! the activation type (`Act`), compile-time constants, and flags that select `#ifdef` blocks.

use std::collections::BTreeMap;

use super::tensor::DType;

/// A kernel family's WGSL, with the shared snippets it needs prepended.
#[derive(Clone, Copy, Debug)]
pub struct ShaderSource {
    pub name: &'static str,
    pub code: &'static str,
    pub includes: &'static [&'static str],
}

/// One instantiation of a family.
#[derive(Clone, Debug, Default)]
pub struct Variant {
    pub act: Option<DType>,
    pub flags: Vec<&'static str>,
    pub consts: BTreeMap<&'static str, String>,
}

impl Variant {
    pub fn new(act: DType) -> Self {
        Variant { act: Some(act), ..Default::default() }
    }
    pub fn flag(mut self, f: &'static str) -> Self {
        self.flags.push(f);
        self
    }
    pub fn flag_if(self, cond: bool, f: &'static str) -> Self {
        if cond {
            self.flag(f)
        } else {
            self
        }
    }
    pub fn constant(mut self, name: &'static str, value: u32) -> Self {
        self.consts.insert(name, format!("{value}u"));
        self
    }
    /// A stable text key for the pipeline cache.
    pub fn key(&self) -> String {
        let mut flags = self.flags.clone();
        flags.sort_unstable();
        let consts: Vec<String> = self.consts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{:?}|{}|{}", self.act, flags.join(","), consts.join(","))
    }
}

/// Produce the WGSL text of `src` for `variant` with `header` (a contract's declarations) after the
/// aliases and constants. Panics when a flag of the variant appears in no `#ifdef` / `#ifndef` of
/// the source or its includes, nor in `extra_flags` (a contract's slot conditions): a misspelt
/// flag would otherwise silently select nothing.
pub(crate) fn assemble_with(src: &ShaderSource, variant: &Variant, header: &str, extra_flags: &[&str]) -> String {
    check_flags(src, variant, extra_flags);
    let act = variant.act.unwrap_or(DType::F32);
    let mut out = String::new();
    if act == DType::F16 {
        out.push_str("enable f16;\n");
    }
    // The GEMM core on matrix units (native only; `GemmTile::coop`).
    if variant.flags.contains(&"COOP") {
        out.push_str("enable wgpu_cooperative_matrix;\n");
    }
    out.push_str(&format!("alias Act = {};\nalias Act4 = vec4<{}>;\n", act.wgsl(), act.wgsl()));
    for (k, v) in &variant.consts {
        out.push_str(&format!("const {k}: u32 = {v};\n"));
    }
    out.push_str(header);
    let mut flags: Vec<&str> = variant.flags.clone();
    if act == DType::F16 {
        flags.push("F16");
    }
    for inc in src.includes {
        out.push_str(&preprocess(inc, &flags));
    }
    out.push_str(&preprocess(src.code, &flags));
    out
}

/// The flags the `#ifdef` / `#ifndef` lines of `code` test.
pub(crate) fn tested_flags(code: &str) -> impl Iterator<Item = &str> {
    code.lines().filter_map(|l| directive(l.trim_start())).flat_map(|(_, rest)| rest.split('|').map(str::trim))
}

fn check_flags(src: &ShaderSource, variant: &Variant, extra_flags: &[&str]) {
    for &flag in &variant.flags {
        let known = extra_flags.contains(&flag) || std::iter::once(src.code).chain(src.includes.iter().copied()).any(|c| tested_flags(c).any(|f| f == flag));
        assert!(known, "shader family {}: flag {flag} appears in no #ifdef/#ifndef of its source or includes, nor in a slot condition", src.name);
    }
}

/// Whether a condition in `#ifdef` syntax holds: `A|B` when any is set, `!A|B` when none is.
pub(crate) fn cond_holds(cond: &str, flags: &[&str]) -> bool {
    let (neg, list) = match cond.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, cond),
    };
    list.split('|').any(|f| flags.contains(&f.trim())) != neg
}

/// `#ifdef X|Y` → (true, "X|Y"), `#ifndef X` → (false, "X").
fn directive(t: &str) -> Option<(bool, &str)> {
    if let Some(rest) = t.strip_prefix("#ifdef ") {
        Some((true, rest.trim()))
    } else {
        t.strip_prefix("#ifndef ").map(|rest| (false, rest.trim()))
    }
}

/// Line-based `#ifdef X` / `#ifndef X` / `#else` / `#endif` (nestable). `#ifdef A|B` is true when
/// any of the flags is set.
fn preprocess(code: &str, flags: &[&str]) -> String {
    let mut out = String::with_capacity(code.len());
    // Each entry: (this branch active, parent active).
    let mut stack: Vec<(bool, bool)> = Vec::new();
    let active = |s: &Vec<(bool, bool)>| s.last().map(|&(a, p)| a && p).unwrap_or(true);
    for line in code.lines() {
        let t = line.trim_start();
        if let Some((ifdef, rest)) = directive(t) {
            let any = rest.split('|').any(|f| flags.contains(&f.trim()));
            let cond = if ifdef { any } else { !any };
            let parent = active(&stack);
            stack.push((cond, parent));
        } else if t.starts_with("#else") {
            let top = stack.last_mut().expect("#else without #ifdef");
            top.0 = !top.0;
        } else if t.starts_with("#endif") {
            stack.pop().expect("#endif without #ifdef");
        } else if active(&stack) {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(stack.is_empty(), "unterminated #ifdef");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn preprocess_nests() {
        let src = "a\n#ifdef X\nb\n#ifdef Y\nc\n#else\nd\n#endif\n#else\ne\n#endif\nf\n";
        assert_eq!(preprocess(src, &["X"]), "a\nb\nd\nf\n");
        assert_eq!(preprocess(src, &["X", "Y"]), "a\nb\nc\nf\n");
        assert_eq!(preprocess(src, &["Y"]), "a\ne\nf\n");
        assert_eq!(preprocess("#ifndef A|B\nx\n#endif\n", &["B"]), "");
    }

    #[test]
    fn conditions() {
        assert!(cond_holds("A|B", &["B"]));
        assert!(!cond_holds("!A|B", &["B"]));
        assert!(cond_holds("!A", &["B"]));
    }

    #[test]
    #[should_panic(expected = "shader family t: flag RMSS")]
    fn unknown_flag_panics() {
        let src = ShaderSource { name: "t", code: "#ifdef RMS\n#endif\n", includes: &[] };
        assemble_with(&src, &Variant::new(DType::F32).flag("RMSS"), "", &[]);
    }
}

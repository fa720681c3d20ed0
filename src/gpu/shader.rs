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

/// Produce the WGSL text of `src` for `variant`.
pub fn assemble(src: &ShaderSource, variant: &Variant) -> String {
    let act = variant.act.unwrap_or(DType::F32);
    let mut out = String::new();
    if act == DType::F16 {
        out.push_str("enable f16;\n");
    }
    out.push_str(&format!("alias Act = {};\nalias Act4 = vec4<{}>;\n", act.wgsl(), act.wgsl()));
    for (k, v) in &variant.consts {
        out.push_str(&format!("const {k}: u32 = {v};\n"));
    }
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

/// Line-based `#ifdef X` / `#ifndef X` / `#else` / `#endif` (nestable). `#ifdef A|B` is true when
/// any of the flags is set.
fn preprocess(code: &str, flags: &[&str]) -> String {
    let mut out = String::with_capacity(code.len());
    // Each entry: (this branch active, parent active).
    let mut stack: Vec<(bool, bool)> = Vec::new();
    let active = |s: &Vec<(bool, bool)>| s.last().map(|&(a, p)| a && p).unwrap_or(true);
    for line in code.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("#ifdef ").or_else(|| t.strip_prefix("#ifndef ")) {
            let any = rest.trim().split('|').any(|f| flags.contains(&f.trim()));
            let cond = if t.starts_with("#ifdef") { any } else { !any };
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
}

//! Turning a WGSL kernel template into a shader: the header (uniform block, storage bindings,
//! helpers) and the substitution of `{{NAME}}` placeholders.

use crate::plan::Region;

/// Most u32 words a dispatch's uniform block holds.
pub const UNIFORM_WORDS: usize = 64;

/// Invocations per workgroup of the elementwise kernels.
pub const ELEMENTWISE_WG: u32 = 256;

/// A shader ready to compile, with the regions its storage bindings 1.. refer to.
#[derive(Clone, Debug)]
pub struct Shader {
    /// Full WGSL source.
    pub source: String,
    /// Region bound at binding i+1.
    pub regions: Vec<Region>,
}

/// Instantiates `template`: each `(placeholder, region)` operand becomes the storage buffer of its
/// region; each `(placeholder, text)` in `exprs` is pasted in. `includes` are prepended as helpers.
pub fn instantiate(template: &str, includes: &[&str], operands: &[(&str, Region)], exprs: &[(&str, String)]) -> Shader {
    let mut regions: Vec<Region> = Vec::new();
    for (_, r) in operands {
        if !regions.contains(r) {
            regions.push(*r);
        }
    }
    let mut header =
        String::from("struct Params { v: array<vec4<u32>, 16> }\n@group(0) @binding(0) var<uniform> P: Params;\n");
    for (i, r) in regions.iter().enumerate() {
        header.push_str(&format!(
            "@group(0) @binding({}) var<storage, read_write> {}: array<f32>;\n",
            i + 1,
            buffer_name(*r)
        ));
    }
    header.push_str(
        "fn p(i: u32) -> u32 { return P.v[i / 4u][i % 4u]; }\n\
         fn pf(i: u32) -> f32 { return bitcast<f32>(p(i)); }\n\
         fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 { return gid.x + gid.y * nwg.x * 256u; }\n",
    );
    for inc in includes {
        header.push_str(inc);
        header.push('\n');
    }
    // Expressions first: they may name operands themselves.
    let mut body = template.to_string();
    for (name, text) in exprs {
        body = body.replace(&format!("{{{{{name}}}}}"), text);
    }
    for (name, r) in operands {
        body = body.replace(&format!("{{{{{name}}}}}"), &buffer_name(*r));
    }
    debug_assert!(!body.contains("{{"), "unreplaced placeholder in kernel:\n{body}");
    Shader { source: header + &body, regions }
}

fn buffer_name(r: Region) -> String {
    match r {
        Region::Params => "params".into(),
        Region::Arena(k) => format!("arena{k}"),
        Region::Grads => "grads".into(),
        Region::OptState => "opt_state".into(),
    }
}

/// A WGSL f32 literal that is exact for every value, infinities included.
pub fn f32_literal(x: f32) -> String {
    format!("bitcast<f32>({}u)", x.to_bits())
}

/// The workgroup grid for `n` elements at `wg` per workgroup, spilling into y past `max_x`.
pub fn grid(n: usize, wg: u32, max_x: u32) -> [u32; 3] {
    let groups = n.div_ceil(wg as usize).max(1) as u64;
    let x = groups.min(max_x as u64);
    let y = groups.div_ceil(x);
    [x as u32, y as u32, 1]
}

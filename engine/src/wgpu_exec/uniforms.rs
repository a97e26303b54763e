//! A kernel's uniform block, declared once in Rust: the [`uniforms!`](crate::uniforms) macro makes
//! a `#[repr(C)]` Pod struct of u32/f32 words and the WGSL accessors the kernel reads its fields
//! with (`u_name()`, or `u_name(i)` for an array), generated from the same declaration, so the
//! layout cannot drift between the two sides.

/// A Pod uniform block with generated WGSL accessors.
pub trait Uniforms: bytemuck::Pod {
    /// WGSL functions reading each field from the uniform block `P`.
    fn wgsl_accessors() -> String;

    /// The block as u32 words.
    fn words(&self) -> Vec<u32> {
        bytemuck::cast_slice(std::slice::from_ref(self)).to_vec()
    }
}

/// Appends the accessor of one field at word `at` and advances `at` past it. `ty` is the field's
/// Rust type as written (`u32`, `f32`, or `[u32; N]`), `words` its size in words.
pub fn accessor(out: &mut String, at: &mut u32, name: &str, ty: &str, words: u32) {
    let ty: String = ty.chars().filter(|c| !c.is_whitespace()).collect();
    match ty.as_str() {
        "u32" => out.push_str(&format!("fn u_{name}() -> u32 {{ return p({at}u); }}\n")),
        "f32" => out.push_str(&format!("fn u_{name}() -> f32 {{ return pf({at}u); }}\n")),
        _ if ty.starts_with("[u32;") => {
            out.push_str(&format!("fn u_{name}(i: u32) -> u32 {{ return p({at}u + i); }}\n"))
        }
        _ if ty.starts_with("[f32;") => {
            out.push_str(&format!("fn u_{name}(i: u32) -> f32 {{ return pf({at}u + i); }}\n"))
        }
        other => panic!("uniform field `{name}`: type `{other}` is not u32, f32 or an array of them"),
    }
    *at += words;
}

/// Declares a uniform block: `uniforms! { /// doc \n pub struct Name { n: u32, scale: f32, dims: [u32; 8] } }`.
#[macro_export]
macro_rules! uniforms {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
        $vis struct $name {
            $($(#[$fm])* pub $field: $ty,)*
        }

        impl $crate::wgpu_exec::uniforms::Uniforms for $name {
            fn wgsl_accessors() -> String {
                let mut out = String::new();
                let mut at = 0u32;
                $($crate::wgpu_exec::uniforms::accessor(
                    &mut out,
                    &mut at,
                    stringify!($field),
                    stringify!($ty),
                    (std::mem::size_of::<$ty>() / 4) as u32,
                );)*
                out
            }
        }
    };
}

/// Most dims the strided kernels handle after merging contiguous dims.
pub const MAX_RANK: usize = 8;

/// A dims or strides array of a uniform block, zero-padded to [`MAX_RANK`].
pub fn rank_array(v: &[usize]) -> [u32; MAX_RANK] {
    let mut out = [0u32; MAX_RANK];
    for (o, &x) in out.iter_mut().zip(v) {
        *o = x as u32;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::uniforms! {
        /// A test block.
        struct Sample { n: u32, scale: f32, dims: [u32; 8], last: u32 }
    }

    #[test]
    fn accessors_follow_the_struct_layout() {
        let s = Sample::wgsl_accessors();
        assert!(s.contains("fn u_n() -> u32 { return p(0u); }"));
        assert!(s.contains("fn u_scale() -> f32 { return pf(1u); }"));
        assert!(s.contains("fn u_dims(i: u32) -> u32 { return p(2u + i); }"));
        assert!(s.contains("fn u_last() -> u32 { return p(10u); }"));
        let words = Sample { n: 3, scale: 0.5, dims: [1; 8], last: 9 }.words();
        assert_eq!(words.len(), 11);
        assert_eq!((words[0], f32::from_bits(words[1]), words[10]), (3, 0.5, 9));
    }
}

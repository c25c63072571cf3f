//! The `ARROW:schema` footer entry pyarrow writes: the Arrow schema as an IPC `Message`
//! flatbuffer (continuation marker, length, message, padding to 8), base64-encoded. With it
//! pyarrow reads our vector columns back as `FixedSizeList<…, size>` and float16 as `halffloat`,
//! exactly the types the fork's `pa.schema` had. A minimal back-to-front flatbuffer builder is
//! enough for the few tables involved (Message, Schema, Field, Int, FloatingPoint, Bool,
//! FixedSizeList); pulling in arrow-ipc for this would cost far more build time.

use super::{Elem, ParquetColumn};

/// A flatbuffer built from the end towards the start, as flatbuffers builders do. Positions
/// (`Off`) count bytes from the end of the buffer, which stays fixed while bytes are prepended.
#[derive(Default)]
struct Builder {
    tail: Vec<u8>,
}

type Off = u32;

/// One table field: its slot (field id) and value.
enum Val {
    U8(u8),
    I16(i16),
    I32(i32),
    I64(i64),
    Ref(Off),
}

impl Builder {
    fn len(&self) -> u32 {
        self.tail.len() as u32
    }

    fn prepend(&mut self, bytes: &[u8]) {
        self.tail.splice(0..0, bytes.iter().copied());
    }

    /// Pads so that `size` bytes prepended next are aligned to `align` (the final length is a
    /// multiple of 8, so alignment from the end is alignment from the start).
    fn align(&mut self, size: u32, align: u32) {
        while !(self.len() + size).is_multiple_of(align) {
            self.prepend(&[0]);
        }
    }

    fn scalar(&mut self, v: &Val) -> Off {
        match *v {
            Val::U8(x) => self.prepend(&[x]),
            Val::I16(x) => {
                self.align(2, 2);
                self.prepend(&x.to_le_bytes());
            }
            Val::I32(x) => {
                self.align(4, 4);
                self.prepend(&x.to_le_bytes());
            }
            Val::I64(x) => {
                self.align(8, 8);
                self.prepend(&x.to_le_bytes());
            }
            Val::Ref(target) => {
                self.align(4, 4);
                let rel = self.len() + 4 - target;
                self.prepend(&rel.to_le_bytes());
            }
        }
        self.len()
    }

    fn string(&mut self, s: &str) -> Off {
        self.align(s.len() as u32 + 1, 4);
        self.prepend(&[0]);
        self.prepend(s.as_bytes());
        self.prepend(&(s.len() as u32).to_le_bytes());
        self.len()
    }

    fn vector(&mut self, items: &[Off]) -> Off {
        self.align(4 * items.len() as u32 + 4, 4);
        for &t in items.iter().rev() {
            self.scalar(&Val::Ref(t));
        }
        self.prepend(&(items.len() as u32).to_le_bytes());
        self.len()
    }

    /// A table with `fields` (slot, value); its vtable is written just before it.
    fn table(&mut self, fields: &[(u16, Val)]) -> Off {
        let start = self.len();
        let mut at = Vec::with_capacity(fields.len());
        for (slot, v) in fields {
            at.push((*slot, self.scalar(v)));
        }
        self.align(4, 4);
        self.prepend(&[0; 4]); // soffset to the vtable, patched below
        let table = self.len();
        let slots = fields.iter().map(|f| f.0 + 1).max().unwrap_or(0);
        let mut vt = vec![0u16; 2 + slots as usize];
        vt[0] = 2 * vt.len() as u16;
        vt[1] = (table - start) as u16;
        for (slot, end) in at {
            vt[2 + slot as usize] = (table - end) as u16;
        }
        for x in vt.iter().rev() {
            self.align(2, 2);
            self.prepend(&x.to_le_bytes());
        }
        let vtable = self.len();
        let idx = self.tail.len() - table as usize;
        let soff = (vtable - table) as i32;
        self.tail[idx..idx + 4].copy_from_slice(&soff.to_le_bytes());
        table
    }

    /// The finished buffer with its root offset, padded to a multiple of 8 bytes.
    fn finish(mut self, root: Off) -> Vec<u8> {
        self.align(4, 8);
        self.scalar(&Val::Ref(root));
        self.tail
    }
}

/// `Type` union tags and their tables.
fn elem_type(b: &mut Builder, e: Elem) -> (u8, Off) {
    let int = |b: &mut Builder, bits: i32, signed: bool| {
        b.table(&[(0, Val::I32(bits)), (1, Val::U8(u8::from(signed)))])
    };
    let float = |b: &mut Builder, precision: i16| b.table(&[(0, Val::I16(precision))]);
    match e {
        Elem::U8 => (2, int(b, 8, false)),
        Elem::U16 => (2, int(b, 16, false)),
        Elem::U32 => (2, int(b, 32, false)),
        Elem::U64 => (2, int(b, 64, false)),
        Elem::I8 => (2, int(b, 8, true)),
        Elem::I16 => (2, int(b, 16, true)),
        Elem::I32 => (2, int(b, 32, true)),
        Elem::I64 => (2, int(b, 64, true)),
        Elem::F16 => (3, float(b, 0)),
        Elem::F32 => (3, float(b, 1)),
        Elem::F64 => (3, float(b, 2)),
        Elem::Bool => (6, b.table(&[])),
    }
}

/// A nullable `Field` (slots: 0 name, 1 nullable, 2 type tag, 3 type, 5 children).
fn field(b: &mut Builder, name: &str, tag: u8, ty: Off, children: &[Off]) -> Off {
    let children = b.vector(children);
    let name = b.string(name);
    b.table(&[
        (0, Val::Ref(name)),
        (1, Val::U8(1)),
        (2, Val::U8(tag)),
        (3, Val::Ref(ty)),
        (5, Val::Ref(children)),
    ])
}

/// The IPC-encapsulated schema message for `columns`.
fn schema_message(columns: &[ParquetColumn]) -> Vec<u8> {
    let mut b = Builder::default();
    let mut fields = Vec::with_capacity(columns.len());
    for c in columns {
        let (tag, ty) = elem_type(&mut b, c.elem);
        let f = match c.list_size {
            None => field(&mut b, &c.name, tag, ty, &[]),
            Some(n) => {
                let item = field(&mut b, "item", tag, ty, &[]);
                let list = b.table(&[(0, Val::I32(n as i32))]);
                field(&mut b, &c.name, 16, list, &[item])
            }
        };
        fields.push(f);
    }
    let fields = b.vector(&fields);
    let schema = b.table(&[(0, Val::I16(0)), (1, Val::Ref(fields))]);
    let message = b.table(&[
        (0, Val::I16(4)), // MetadataVersion V5
        (1, Val::U8(1)),  // MessageHeader::Schema
        (2, Val::Ref(schema)),
        (3, Val::I64(0)),
    ]);
    let fb = b.finish(message);
    let padded = fb.len().div_ceil(8) * 8;
    let mut out = Vec::with_capacity(8 + padded);
    out.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
    out.extend_from_slice(&(padded as u32).to_le_bytes());
    out.extend_from_slice(&fb);
    out.resize(8 + padded, 0);
    out
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= c.len() {
                s.push(char::from(A[(n >> shift) as usize & 63]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// The value of the `ARROW:schema` key for a file with `columns`.
pub(super) fn encoded(columns: &[ParquetColumn]) -> String {
    base64(&schema_message(columns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn message_is_framed_and_8_aligned() {
        let m = schema_message(&[ParquetColumn {
            name: "x".into(),
            elem: Elem::F32,
            list_size: Some(3),
        }]);
        assert_eq!(&m[..4], &[0xff; 4]);
        assert_eq!(m.len() % 8, 0);
        let len = u32::from_le_bytes([m[4], m[5], m[6], m[7]]) as usize;
        assert_eq!(len + 8, m.len());
    }
}

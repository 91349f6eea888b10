//! Editing DER the way an attacker would: change one number deep inside a file a real tool
//! wrote (an iteration count, scrypt's N) and re-encode every length around it, looking
//! inside the OCTET STRINGs that PKCS#12 wraps its DER in.

use anyhow::{Result, bail};

/// One DER element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A primitive element: INTEGER, OID, OCTET STRING...
    Primitive {
        /// The identifier octet (single-byte tags only).
        tag: u8,
        /// Its contents.
        value: Vec<u8>,
    },
    /// A constructed element: SEQUENCE, SET, `[0]`...
    Constructed {
        /// The identifier octet.
        tag: u8,
        /// Its elements.
        children: Vec<Node>,
    },
}

impl Node {
    /// Parses `der`, which must hold exactly one element.
    pub fn parse(der: &[u8]) -> Result<Node> {
        let (node, rest) = Node::parse_one(der)?;
        if !rest.is_empty() {
            bail!("{} bytes after the element", rest.len());
        }
        Ok(node)
    }

    fn parse_one(der: &[u8]) -> Result<(Node, &[u8])> {
        let [tag, first, rest @ ..] = der else {
            bail!("truncated header");
        };
        if tag & 0x1f == 0x1f {
            bail!("multi-byte tags are not supported");
        }
        let (len, rest) = match *first {
            n if n < 0x80 => (usize::from(n), rest),
            0x81..=0x84 => {
                let k = usize::from(first & 0x7f);
                if rest.len() < k {
                    bail!("truncated length");
                }
                let len = rest[..k]
                    .iter()
                    .fold(0usize, |n, &b| (n << 8) | usize::from(b));
                (len, &rest[k..])
            }
            _ => bail!("indefinite or oversized length"),
        };
        if rest.len() < len {
            bail!("truncated contents");
        }
        let (value, rest) = rest.split_at(len);
        let node = if tag & 0x20 != 0 {
            let mut children = Vec::new();
            let mut inner = value;
            while !inner.is_empty() {
                let (child, more) = Node::parse_one(inner)?;
                children.push(child);
                inner = more;
            }
            Node::Constructed {
                tag: *tag,
                children,
            }
        } else {
            Node::Primitive {
                tag: *tag,
                value: value.to_vec(),
            }
        };
        Ok((node, rest))
    }

    /// The element as DER, every length recomputed.
    pub fn encode(&self) -> Vec<u8> {
        let (tag, body) = match self {
            Node::Primitive { tag, value } => (*tag, value.clone()),
            Node::Constructed { tag, children } => {
                (*tag, children.iter().flat_map(Node::encode).collect())
            }
        };
        let mut out = vec![tag];
        let len = body.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|&b| b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend(body);
        out
    }

    /// A DER INTEGER holding `n`.
    pub fn integer(n: u64) -> Node {
        let mut value: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        if value.first().is_none_or(|b| b & 0x80 != 0) {
            value.insert(0, 0);
        }
        Node::Primitive { tag: 0x02, value }
    }

    /// The elements of a constructed element (none for a primitive one).
    pub fn children_mut(&mut self) -> &mut Vec<Node> {
        match self {
            Node::Constructed { children, .. } => children,
            Node::Primitive { .. } => panic!("a primitive element has no children"),
        }
    }

    /// Calls `edit` on every SEQUENCE whose first element is the OID `dotted` (an
    /// AlgorithmIdentifier, a SafeBag, a ContentInfo), here and inside OCTET STRINGs that
    /// hold DER; returns how many it found. OCTET STRINGs are rewritten only if something
    /// inside them was found.
    pub fn with_sequences(&mut self, dotted: &str, edit: &mut dyn FnMut(&mut Node)) -> usize {
        let oid = encode_oid(dotted);
        self.walk(&oid, edit)
    }

    fn walk(&mut self, oid: &[u8], edit: &mut dyn FnMut(&mut Node)) -> usize {
        match self {
            Node::Constructed { tag, children } => {
                let mut found = 0;
                if *tag == 0x30
                    && matches!(children.first(), Some(Node::Primitive { tag: 0x06, value }) if value == oid)
                {
                    edit(self);
                    found += 1;
                }
                if let Node::Constructed { children, .. } = self {
                    for child in children {
                        found += child.walk(oid, edit);
                    }
                }
                found
            }
            Node::Primitive { tag: 0x04, value } => match Node::parse(value) {
                Ok(mut inner @ Node::Constructed { .. }) => {
                    let found = inner.walk(oid, edit);
                    if found > 0 {
                        *value = inner.encode();
                    }
                    found
                }
                _ => 0,
            },
            Node::Primitive { .. } => 0,
        }
    }
}

/// The contents octets of an OBJECT IDENTIFIER in dotted form.
fn encode_oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted
        .split('.')
        .map(|a| a.parse().expect("a dotted OID"))
        .collect();
    let mut out = Vec::new();
    for arc in std::iter::once(arcs[0] * 40 + arcs[1]).chain(arcs[2..].iter().copied()) {
        let mut groups = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            groups.push(0x80 | (rest & 0x7f) as u8);
            rest >>= 7;
        }
        out.extend(groups.into_iter().rev());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_edits() {
        // SEQUENCE { SEQUENCE { OID 1.2.840.113549.1.5.12, SEQUENCE { OCTET STRING, INTEGER 2048 } } }
        let der = [
            0x30, 0x1a, 0x30, 0x18, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05,
            0x0c, 0x30, 0x0b, 0x04, 0x05, 1, 2, 3, 4, 5, 0x02, 0x02, 0x08, 0x00,
        ];
        let mut node = Node::parse(&der).unwrap();
        assert_eq!(node.encode(), der);
        let found = node.with_sequences("1.2.840.113549.1.5.12", &mut |alg| {
            alg.children_mut()[1].children_mut()[1] = Node::integer(1 << 31);
        });
        assert_eq!(found, 1);
        let out = node.encode();
        assert_eq!(&out[..2], [0x30, 0x1d]);
        assert_eq!(&out[out.len() - 7..], [0x02, 0x05, 0x00, 0x80, 0, 0, 0]);
        assert_eq!(Node::integer(0).encode(), [0x02, 0x01, 0x00]);
        assert_eq!(Node::integer(0x7f).encode(), [0x02, 0x01, 0x7f]);
    }
}

//! The offline bundle: one archive that carries a device's signed bundle and every file it
//! references, for a device with no network to the backend (`apiary bundles export`,
//! `apiary-agent apply`). It is a POSIX ustar tar, so `tar -tvf` lists it, holding exactly
//! `bundle.json` (the signed envelope, first) and `files/<sha256>` for each file. The reader
//! takes nothing else: no links, no directories, no other names, no duplicates.

use std::io::{self, Read, Seek, SeekFrom, Write};

use crate::digest;

/// The first member: the signed envelope as JSON.
pub const BUNDLE_MEMBER: &str = "bundle.json";
/// Where files go: `files/<sha256>`.
pub const FILES_DIR: &str = "files/";
/// Most members read from one archive (the bundle and its files).
pub const MAX_MEMBERS: usize = 10_000;
/// Largest member (the size field of ustar holds 8 GiB; a bundle's files are far smaller).
pub const MAX_MEMBER_BYTES: u64 = 4 * 1024 * 1024 * 1024;

const BLOCK: usize = 512;

/// Why an archive was refused; each says where.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot read the archive: {0}")]
    Io(#[from] io::Error),
    #[error("member {index}: {message}")]
    Member { index: usize, message: String },
    #[error("the archive has no {BUNDLE_MEMBER} as its first member")]
    NoBundle,
    #[error("the archive has more than {MAX_MEMBERS} members")]
    TooMany,
}

/// A member: its name, where its content starts in the archive, and its length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub offset: u64,
    pub size: u64,
}

impl Member {
    /// The SHA-256 a `files/` member is named after.
    pub fn sha256(&self) -> Option<&str> {
        self.name.strip_prefix(FILES_DIR)
    }
}

/// Appends a member holding `data`.
pub fn write_member(out: &mut impl Write, name: &str, data: &[u8]) -> io::Result<()> {
    write_header(out, name, data.len() as u64)?;
    out.write_all(data)?;
    pad(out, data.len() as u64)
}

/// Appends a member of `size` bytes streamed from `data`.
pub fn write_member_from(
    out: &mut impl Write,
    name: &str,
    size: u64,
    data: &mut impl Read,
) -> io::Result<()> {
    write_header(out, name, size)?;
    let copied = io::copy(&mut data.take(size), out)?;
    if copied != size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{name}: {copied} of {size} bytes"),
        ));
    }
    pad(out, size)
}

/// Ends the archive (two zero blocks).
pub fn finish(out: &mut impl Write) -> io::Result<()> {
    out.write_all(&[0u8; 2 * BLOCK])
}

fn write_header(out: &mut impl Write, name: &str, size: u64) -> io::Result<()> {
    if name.len() > 99 || !valid_name(name) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not an offline-bundle member name"),
        ));
    }
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    seal(&mut h);
    out.write_all(&h)
}

/// The header checksum: every byte summed, the checksum field counted as spaces.
fn checksum(h: &[u8; BLOCK]) -> u64 {
    h.iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum()
}

/// Writes the header's checksum into its field.
fn seal(h: &mut [u8; BLOCK]) {
    let sum = checksum(h);
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

fn pad(out: &mut impl Write, size: u64) -> io::Result<()> {
    let rest = (BLOCK - (size as usize % BLOCK)) % BLOCK;
    out.write_all(&[0u8; BLOCK][..rest])
}

fn valid_name(name: &str) -> bool {
    name == BUNDLE_MEMBER
        || name
            .strip_prefix(FILES_DIR)
            .is_some_and(digest::is_sha256_hex)
}

/// Lists the members of an offline bundle, checking every header; `bundle.json` comes first.
pub fn index(archive: &mut (impl Read + Seek)) -> Result<Vec<Member>, ArchiveError> {
    let mut members: Vec<Member> = Vec::new();
    let mut offset = 0u64;
    loop {
        let mut h = [0u8; BLOCK];
        archive.seek(SeekFrom::Start(offset))?;
        archive.read_exact(&mut h).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => ArchiveError::Member {
                index: members.len(),
                message: "the archive ends inside a header (no end marker)".into(),
            },
            _ => ArchiveError::Io(e),
        })?;
        if h.iter().all(|&b| b == 0) {
            break;
        }
        if members.len() == MAX_MEMBERS {
            return Err(ArchiveError::TooMany);
        }
        let bad = |message: String| ArchiveError::Member {
            index: members.len(),
            message,
        };
        let member = parse_header(&h, offset + BLOCK as u64).map_err(bad)?;
        if members.iter().any(|m| m.name == member.name) {
            return Err(bad(format!("{} appears twice", member.name)));
        }
        if members.is_empty() != (member.name == BUNDLE_MEMBER) {
            return Err(ArchiveError::NoBundle);
        }
        let blocks = member.size.div_ceil(BLOCK as u64);
        offset = member.offset + blocks * BLOCK as u64;
        members.push(member);
    }
    // The content of the last member must really be there.
    if let Some(last) = members.last() {
        let end = archive.seek(SeekFrom::End(0))?;
        if end < last.offset + last.size {
            return Err(ArchiveError::Member {
                index: members.len() - 1,
                message: format!("{} is cut short", last.name),
            });
        }
    }
    if members.is_empty() {
        return Err(ArchiveError::NoBundle);
    }
    Ok(members)
}

fn parse_header(h: &[u8; BLOCK], offset: u64) -> Result<Member, String> {
    if &h[257..262] != b"ustar" {
        return Err("not a ustar header".into());
    }
    let stored = octal(&h[148..156]).ok_or("unreadable checksum")?;
    let sum = checksum(h);
    if stored != sum {
        return Err(format!("header checksum {stored} does not match {sum}"));
    }
    if !matches!(h[156], b'0' | 0) {
        return Err(format!(
            "type {:?} is not a regular file (links, directories and devices are refused)",
            h[156] as char
        ));
    }
    // ustar's prefix field would put the name elsewhere: not used by this format.
    if h[345] != 0 {
        return Err("a name with a ustar prefix".into());
    }
    let end = h[..100].iter().position(|&b| b == 0).unwrap_or(100);
    let name = std::str::from_utf8(&h[..end]).map_err(|_| "a name that is not UTF-8")?;
    if !valid_name(name) {
        return Err(format!(
            "{name:?}: only {BUNDLE_MEMBER} and {FILES_DIR}<sha256> belong in an offline bundle"
        ));
    }
    let size = octal(&h[124..136]).ok_or("unreadable size")?;
    if size > MAX_MEMBER_BYTES {
        return Err(format!("{name} is {size} bytes, over {MAX_MEMBER_BYTES}"));
    }
    Ok(Member {
        name: name.to_string(),
        offset,
        size,
    })
}

fn octal(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?;
    let digits = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if digits.is_empty() {
        return None;
    }
    u64::from_str_radix(digits, 8).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn archive(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, data) in members {
            write_member(&mut out, name, data).unwrap();
        }
        finish(&mut out).unwrap();
        out
    }

    #[test]
    fn members_round_trip() {
        let bytes = archive(&[("bundle.json", b"{}"), (&format!("files/{SHA}"), b"test")]);
        assert_eq!(bytes.len() % BLOCK, 0);
        let members = index(&mut Cursor::new(&bytes)).unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(members[1].sha256(), Some(SHA));
        let m = &members[1];
        assert_eq!(
            &bytes[m.offset as usize..(m.offset + m.size) as usize],
            b"test"
        );
    }

    #[test]
    fn anything_else_is_refused() {
        let no_bundle = archive(&[(&format!("files/{SHA}"), b"x")]);
        assert!(matches!(
            index(&mut Cursor::new(&no_bundle)),
            Err(ArchiveError::NoBundle)
        ));
        let mut twice = archive(&[("bundle.json", b"{}"), (&format!("files/{SHA}"), b"x")]);
        let second = twice.split_off(2 * BLOCK);
        twice.extend_from_slice(&second[..2 * BLOCK]);
        twice.extend_from_slice(&second);
        let err = index(&mut Cursor::new(&twice)).unwrap_err().to_string();
        assert!(err.contains("appears twice"), "{err}");

        let mut tampered = archive(&[("bundle.json", b"{}")]);
        tampered[0] = b'B';
        let err = index(&mut Cursor::new(&tampered)).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");

        let mut link = archive(&[("bundle.json", b"{}")]);
        let mut header: [u8; BLOCK] = link[..BLOCK].try_into().unwrap();
        header[156] = b'2';
        seal(&mut header);
        link[..BLOCK].copy_from_slice(&header);
        let err = index(&mut Cursor::new(&link)).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");

        let cut = archive(&[("bundle.json", &[b'x'; 2000])]);
        let err = index(&mut Cursor::new(&cut[..BLOCK + 600]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ends inside a header"), "{err}");
        assert!(write_member(&mut Vec::new(), "../etc/passwd", b"").is_err());
        assert!(write_member(&mut Vec::new(), "files/abc", b"").is_err());
    }
}

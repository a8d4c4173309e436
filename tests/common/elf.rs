//! The section headers of an ELF64 little-endian executable: enough to see how the daemon was
//! laid out (`link/hot-text.ld`) without a tool that may not be installed.

/// A section: its name, address and size.
#[derive(Debug)]
pub struct Section {
    pub name: String,
    pub addr: u64,
    pub size: u64,
}

fn bytes_at<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    bytes_at(b, at).map(u16::from_le_bytes)
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    bytes_at(b, at).map(u32::from_le_bytes)
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    bytes_at(b, at).map(u64::from_le_bytes)
}

/// The sections of `bytes`, or None when it is not a well-formed ELF64 little-endian file.
pub fn sections(bytes: &[u8]) -> Option<Vec<Section>> {
    if bytes.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let shoff = usize::try_from(u64_at(bytes, 0x28)?).ok()?;
    let shentsize = usize::from(u16_at(bytes, 0x3a)?);
    let shnum = usize::from(u16_at(bytes, 0x3c)?);
    let shstrndx = usize::from(u16_at(bytes, 0x3e)?);
    let header = |i: usize| shoff.checked_add(i.checked_mul(shentsize)?);
    let strtab = usize::try_from(u64_at(bytes, header(shstrndx)?.checked_add(24)?)?).ok()?;
    (0..shnum)
        .map(|i| {
            let h = header(i)?;
            let name_at = strtab.checked_add(usize::try_from(u32_at(bytes, h)?).ok()?)?;
            let name = bytes.get(name_at..)?.split(|&c| c == 0).next()?;
            Some(Section {
                name: String::from_utf8_lossy(name).into_owned(),
                addr: u64_at(bytes, h.checked_add(16)?)?,
                size: u64_at(bytes, h.checked_add(32)?)?,
            })
        })
        .collect()
}

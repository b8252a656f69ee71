//! Randomness from the operating system: secrets (TURN's, nonces for resume tokens, the
//! resume key) and the seeds of sans-IO cores.

/// `N` random bytes from `/dev/urandom`.
pub fn bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    use std::io::Read;
    let mut bytes = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes)
}

//! Media files `duet call` plays and records: VP8 in IVF, Opus in Ogg.

pub mod ivf;
pub mod ogg;

/// Why a media file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum MediaFileError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("this is not an {0} file")]
    NotThisFormat(&'static str),
    #[error("the file ends in the middle of {0}")]
    Truncated(&'static str),
    #[error("the file is corrupt: {0}")]
    Corrupt(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
}

/// Fills `buf`, or says which part of the file (`what`) the file ended in.
fn read_all(
    input: &mut impl std::io::Read,
    buf: &mut [u8],
    what: &'static str,
) -> Result<(), MediaFileError> {
    input.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => MediaFileError::Truncated(what),
        _ => MediaFileError::Io(e),
    })
}

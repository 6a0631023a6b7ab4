//! Reading a blob's bytes for a response: on the request thread when the
//! page cache holds them, on the blocking pool when the disk must be read.

use super::BlobRead;
use std::sync::Arc;

/// Up to `want` bytes at `pos` (fewer only at the end of the data). Bytes
/// already in the page cache are read on this thread (`preadv2` with
/// `RWF_NOWAIT` never waits for the disk); the rest on a blocking thread.
pub async fn read_chunk(
    data: Arc<dyn BlobRead>,
    pos: u64,
    want: usize,
) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; want];
    let mut filled = 0;
    if let Some(file) = data.as_file() {
        while filled < want {
            let mut iov = [std::io::IoSliceMut::new(&mut buf[filled..])];
            match rustix::io::preadv2(
                file,
                &mut iov,
                pos + filled as u64,
                rustix::io::ReadWriteFlags::NOWAIT,
            ) {
                Ok(0) => {
                    buf.truncate(filled);
                    return Ok(buf);
                }
                Ok(n) => filled += n,
                // EAGAIN (not cached), EOPNOTSUPP (file system): block.
                Err(_) => break,
            }
        }
        if filled == want {
            return Ok(buf);
        }
    }
    tokio::task::spawn_blocking(move || {
        while filled < want {
            let n = data.read_at(&mut buf[filled..], pos + filled as u64)?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        buf.truncate(filled);
        Ok(buf)
    })
    .await
    .map_err(std::io::Error::other)?
}

/// The first `len` bytes of `data`, read whole on the blocking pool (a
/// small body an adapter or the core buffers).
pub async fn read_whole(data: Arc<dyn BlobRead>, len: u64) -> std::io::Result<Vec<u8>> {
    tokio::task::spawn_blocking(move || data.read_prefix(len))
        .await
        .map_err(std::io::Error::other)?
}

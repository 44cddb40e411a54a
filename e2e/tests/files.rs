//! Files (issue 13) end to end: an image pasted into one person's composer shows inline
//! for the other, and opens full size; a PDF dropped on the composer arrives as a card the
//! other person downloads, byte for byte; a 25 MB upload leaves the server's memory flat,
//! and a decompression bomb is refused without the server growing.

use std::net::SocketAddr;

use anyhow::{Context, Result, ensure};
use e2e::{Browser, ChromeDriver, Confab, PASSWORD, eventually, register};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn js(browser: &Browser, script: &str) -> Result<Value> {
    Ok(browser.client.execute(script, Vec::new()).await?)
}

async fn sign_in(browser: &Browser, confab: &Confab, user: &str) -> Result<()> {
    browser.client.goto(&confab.url()).await?;
    browser.type_into("#username", user).await?;
    browser.type_into("#password", PASSWORD).await?;
    browser.click("#submit").await?;
    browser.wait_for_text("#status", "Online").await
}

/// Waits until every file attached to the draft is uploaded.
async fn uploaded(browser: &Browser) -> Result<()> {
    eventually("the attached files to finish uploading", || async {
        let done = js(
            browser,
            "const chips = [...document.querySelectorAll('.upload')];
             return chips.length > 0 && chips.every(c => !c.querySelector('progress') && !c.classList.contains('failed'));",
        )
        .await?;
        Ok((done == true).then_some(()))
    })
    .await
}

#[tokio::test]
async fn a_pasted_image_shows_inline_for_the_other_person() -> Result<()> {
    let confab = Confab::start(&[]).await?;
    register(confab.addr, "ann").await?;
    register(confab.addr, "bob").await?;
    let driver = ChromeDriver::start().await?;
    let ann = driver.browser().await?;
    let bob = driver.browser().await?;
    sign_in(&ann, &confab, "ann").await?;
    sign_in(&bob, &confab, "bob").await?;

    // A screenshot on the clipboard, pasted into the composer: an image with no name.
    let pasted = ann
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const canvas = document.createElement('canvas');
             canvas.width = 640; canvas.height = 400;
             const draw = canvas.getContext('2d');
             draw.fillStyle = '#4f46e5'; draw.fillRect(0, 0, 640, 400);
             draw.fillStyle = '#f59e0b'; draw.fillRect(40, 40, 200, 120);
             canvas.toBlob(blob => {
                 const data = new DataTransfer();
                 data.items.add(new File([blob], 'image.png', {type: 'image/png'}));
                 const paste = new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true});
                 document.getElementById('draft').dispatchEvent(paste);
                 done(paste.defaultPrevented);
             }, 'image/png');",
            Vec::new(),
        )
        .await?;
    ensure!(pasted == true, "the composer takes the pasted image");
    uploaded(&ann).await?;
    let chip = ann.text(".upload .file-name").await?.unwrap_or_default();
    ensure!(chip.starts_with("pasted-") && chip.ends_with(".png"), "{chip}");
    ann.type_into("#draft", "the new dashboard\u{E007}").await?;

    // Bob sees it inline, drawn from the server's thumbnail.
    eventually("the image inline on bob's page", || async {
        let size = js(
            &bob,
            "const img = document.querySelector('.file-image img');
             return img && img.src.startsWith('blob:') && img.complete && img.naturalWidth > 0
                 ? [img.naturalWidth, img.naturalHeight] : null;",
        )
        .await?;
        Ok(serde_json::from_value::<Option<(u32, u32)>>(size)?)
    })
    .await
    .and_then(|(width, height)| {
        ensure!((width, height) == (360, 225), "a thumbnail of 640 × 400: {width} × {height}");
        Ok(())
    })?;
    bob.wait_for_text(".message .text", "the new dashboard").await?;
    bob.screenshot("files-pasted-image").await?;

    // A click opens it full size.
    bob.click(".file-image").await?;
    eventually("the full image", || async {
        let size = js(
            &bob,
            "const img = document.querySelector('.lightbox .full-image');
             return img && img.complete && img.naturalWidth > 0 ? img.naturalWidth : null;",
        )
        .await?;
        Ok(size.as_u64().filter(|width| *width == 640))
    })
    .await?;
    bob.screenshot("files-full-image").await?;
    ann.close().await?;
    bob.close().await
}

#[tokio::test]
async fn a_dropped_pdf_is_downloaded_by_the_other_person() -> Result<()> {
    let confab = Confab::start(&[]).await?;
    register(confab.addr, "ann").await?;
    register(confab.addr, "bob").await?;
    let downloads = tempfile::tempdir()?;
    let driver = ChromeDriver::start().await?;
    let ann = driver.browser().await?;
    let bob = driver.browser_downloading_to(downloads.path()).await?;
    sign_in(&ann, &confab, "ann").await?;
    sign_in(&bob, &confab, "bob").await?;

    // A PDF dragged from the desktop and dropped on the composer.
    let dropped = js(
        &ann,
        "const text = '%PDF-1.4\\n% the quarterly plan\\n' + 'x'.repeat(3000) + '\\n%%EOF\\n';
         const data = new DataTransfer();
         data.items.add(new File([text], 'Q3 plan.pdf', {type: 'application/pdf'}));
         const form = document.querySelector('form.composer');
         form.dispatchEvent(new DragEvent('dragover', {dataTransfer: data, bubbles: true, cancelable: true}));
         const drop = new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true});
         form.dispatchEvent(drop);
         return drop.defaultPrevented;",
    )
    .await?;
    ensure!(dropped == true, "the composer takes the dropped file");
    uploaded(&ann).await?;
    ann.type_into("#draft", "plan attached\u{E007}").await?;

    bob.wait_for_text(".file-card .file-name", "Q3 plan.pdf").await?;
    bob.wait_for_text(".file-card .file-meta", "PDF").await?;
    bob.screenshot("files-dropped-pdf").await?;
    bob.click(".file-card .file-download").await?;
    let saved = downloads.path().join("Q3 plan.pdf");
    let bytes = eventually("the PDF saved by bob's browser", || async {
        Ok(std::fs::read(&saved).ok().filter(|bytes| bytes.ends_with(b"%%EOF\n")))
    })
    .await?;
    ensure!(bytes.starts_with(b"%PDF-1.4\n% the quarterly plan\n"), "the bytes as sent");
    ensure!(bytes.len() == 3000 + 37, "{} bytes", bytes.len());
    ann.close().await?;
    bob.close().await
}

/// A process's resident memory and its peak since the last reset, in kB.
fn memory(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        let line = status.lines().find(|line| line.starts_with(name)).context("a field")?;
        Ok(line.split_whitespace().nth(1).context("a value")?.parse()?)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// Resets a process's peak resident memory to what it holds now (Linux, as root or owner).
fn reset_peak(pid: u32) -> Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").context("reset the peak RSS")
}

/// Streams `size` bytes of file to `POST /api/files?name=`, 64 KiB at a time; the status.
async fn upload(
    addr: SocketAddr,
    token: &str,
    name: &str,
    head: &[u8],
    size: usize,
) -> Result<u16> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!(
        "POST /api/files?name={name} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {size}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    stream.write_all(head).await?;
    let mut piece = vec![0u8; 64 * 1024];
    let mut sent = head.len();
    let mut seed = 0x9e37_79b9_u32;
    while sent < size {
        for byte in piece.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            *byte = seed as u8;
        }
        let take = piece.len().min(size - sent);
        if stream.write_all(&piece[..take]).await.is_err() {
            break;
        }
        sent += take;
    }
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    Ok(answer.split(' ').nth(1).context("a status")?.parse()?)
}

#[tokio::test]
async fn a_25_mb_upload_and_a_bomb_leave_the_server_small() -> Result<()> {
    let confab = Confab::start(&[]).await?;
    let token = register(confab.addr, "ann").await?;
    let pid = confab.pid().context("confab runs")?;
    // A first small upload, so that what every upload allocates once is there already.
    ensure!(upload(confab.addr, &token, "warm.bin", b"", 1 << 20).await? == 201);
    let (before, _) = memory(pid)?;
    reset_peak(pid)?;
    let status = upload(confab.addr, &token, "big.bin", b"", 25_000_000).await?;
    ensure!(status == 201, "25 MB (the default limit) is taken: {status}");
    let (after, peak) = memory(pid)?;
    println!(
        "{{\"upload_mb\":25,\"rss_before_kb\":{before},\"rss_peak_kb\":{peak},\"rss_after_kb\":{after}}}"
    );
    ensure!(
        peak.saturating_sub(before) < 16 * 1024,
        "RSS grew from {before} kB to a peak of {peak} kB during a 25 MB upload"
    );
    let stored = std::fs::read_dir(confab.data_dir().join("files"))?
        .filter_map(Result::ok)
        .filter_map(|entry| entry.metadata().ok())
        .any(|metadata| metadata.len() == 25_000_000);
    ensure!(stored, "the file is on disk under --data");

    // A PNG header that claims 100,000 × 100,000 pixels: refused from its header.
    reset_peak(pid)?;
    let bomb = png_header(100_000, 100_000);
    let status = upload(confab.addr, &token, "bomb.png", &bomb, bomb.len() + 1000).await?;
    ensure!(status == 413, "a decompression bomb is refused: {status}");
    let (_, peak) = memory(pid)?;
    println!("{{\"bomb\":\"100000x100000\",\"rss_peak_kb\":{peak}}}");
    ensure!(peak.saturating_sub(before) < 16 * 1024, "the bomb made RSS peak at {peak} kB");
    ensure!(upload(confab.addr, &token, "after.txt", b"still here", 10).await? == 201);
    Ok(())
}

/// The signature and IHDR chunk of a PNG of `width` × `height`, checksum included.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&width.to_be_bytes());
    chunk.extend_from_slice(&height.to_be_bytes());
    chunk.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&chunk);
    png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

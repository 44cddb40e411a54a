//! What a file is, from its bytes, and the pictures made from images: a thumbnail, the
//! image itself without its metadata, an avatar. Plain blocking code over files on disk,
//! run on a blocking thread; decoding is bounded by [`limits`], so a small file that
//! claims to be a huge image (a decompression bomb) is refused before any pixel is
//! allocated.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

/// The longest side of a thumbnail, in pixels.
pub const THUMB_PIXELS: u32 = 360;
/// The longest side of an image the server decodes.
pub const MAX_SIDE: u32 = 12_000;
/// The most memory decoding one image may take.
const MAX_DECODE_BYTES: u64 = 256 << 20;
/// JPEG quality of re-encoded images and thumbnails.
const JPEG_QUALITY: u8 = 85;

/// What the bytes of a file are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// An image the page shows: PNG, JPEG, GIF or WebP.
    Raster(ImageFormat),
    /// Anything else, with the type its first bytes say (`application/octet-stream` when
    /// they say nothing).
    Other(&'static str),
}

/// Why an image cannot be taken.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Larger than [`MAX_SIDE`] on a side, or than decoding may allocate.
    #[error("the image is too large: at most {MAX_SIDE} pixels on a side")]
    TooLarge,
    /// Not an image of the kind its first bytes say, or damaged.
    #[error("the image cannot be read: {0}")]
    Unreadable(String),
    /// Not an image at all (for an avatar).
    #[error("not an image: a picture must be PNG, JPEG, GIF or WebP")]
    NotAnImage,
    /// Reading or writing the files failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<image::ImageError> for ImageError {
    fn from(error: image::ImageError) -> ImageError {
        match error {
            image::ImageError::Limits(_) => ImageError::TooLarge,
            image::ImageError::IoError(error) => ImageError::Io(error),
            other => ImageError::Unreadable(other.to_string()),
        }
    }
}

/// The MIME type of a raster format.
pub fn mime(format: ImageFormat) -> &'static str {
    format.to_mime_type()
}

/// What `path` holds, from its first bytes (never from its name).
pub fn sniff(path: &Path) -> std::io::Result<Kind> {
    let mut head = Vec::with_capacity(512);
    File::open(path)?.take(512).read_to_end(&mut head)?;
    if let Ok(format) = image::guess_format(&head)
        && matches!(
            format,
            ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP
        )
    {
        return Ok(Kind::Raster(format));
    }
    Ok(Kind::Other(other_type(&head)))
}

/// The type of a file that is not a raster image, by its magic number; text if its first
/// bytes are UTF-8 with no NUL.
fn other_type(head: &[u8]) -> &'static str {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"%PDF-", "application/pdf"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x1f\x8b", "application/gzip"),
        (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
        (b"ID3", "audio/mpeg"),
        (b"OggS", "audio/ogg"),
        (b"\x1a\x45\xdf\xa3", "video/webm"),
        (b"BM", "image/bmp"),
        (b"II*\x00", "image/tiff"),
        (b"MM\x00*", "image/tiff"),
    ];
    if let Some((_, mime)) = MAGIC.iter().find(|(magic, _)| head.starts_with(magic)) {
        return mime;
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return "video/mp4";
    }
    // A UTF-8 sequence may be cut at the end of the head.
    let text = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(error) => error.error_len().is_none() && error.valid_up_to() + 4 > head.len(),
    };
    if text && !head.contains(&0) { "text/plain" } else { "application/octet-stream" }
}

/// The raster formats a file name's extension claims, if it claims one.
pub fn claimed_format(name: &str) -> Option<ImageFormat> {
    let (_, extension) = name.rsplit_once('.')?;
    match extension.to_ascii_lowercase().as_str() {
        "png" => Some(ImageFormat::Png),
        "jpg" | "jpeg" | "jfif" => Some(ImageFormat::Jpeg),
        "gif" => Some(ImageFormat::Gif),
        "webp" => Some(ImageFormat::WebP),
        _ => None,
    }
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits
}

/// Decodes `path` as `format` within the limits, turned upright as its EXIF orientation
/// says.
fn decode(path: &Path, format: ImageFormat) -> Result<DynamicImage, ImageError> {
    let mut reader = ImageReader::with_format(BufReader::new(File::open(path)?), format);
    reader.limits(limits());
    let mut decoder = reader.into_decoder()?;
    let orientation = decoder.orientation()?;
    let mut image = DynamicImage::from_decoder(decoder)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// Writes `image` to `path` as PNG.
fn write_png(image: &DynamicImage, path: &Path) -> Result<ImageFormat, ImageError> {
    let mut out = BufWriter::new(File::create(path)?);
    image.write_to(&mut out, ImageFormat::Png)?;
    std::io::Write::flush(&mut out)?;
    Ok(ImageFormat::Png)
}

/// Writes `image` to `path`: PNG if it has transparency, else JPEG. Returns the format.
fn encode(image: &DynamicImage, path: &Path) -> Result<ImageFormat, ImageError> {
    if image.color().has_alpha() {
        return write_png(image, path);
    }
    let mut out = BufWriter::new(File::create(path)?);
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY);
    image.to_rgb8().write_with_encoder(encoder)?;
    std::io::Write::flush(&mut out)?;
    Ok(ImageFormat::Jpeg)
}

/// An image made ready to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// Its size, upright.
    pub width: u32,
    /// Its height, upright.
    pub height: u32,
    /// The format of what is served (a JPEG stays JPEG; WebP is served as PNG or JPEG).
    pub format: ImageFormat,
}

/// Makes an upload that is a raster image ready to serve: its thumbnail written to
/// `thumb`, and the image itself rewritten in place without metadata (EXIF with its GPS
/// position, text chunks), upright. A GIF is kept as it came (it may be animated and has
/// no EXIF); its thumbnail is its first frame.
pub fn prepare(path: &Path, format: ImageFormat, thumb: &Path) -> Result<Prepared, ImageError> {
    let image = decode(path, format)?;
    let (width, height) = (image.width(), image.height());
    if width <= THUMB_PIXELS && height <= THUMB_PIXELS {
        // Never larger than the image.
        encode(&image, thumb)?;
    } else {
        encode(&image.thumbnail(THUMB_PIXELS, THUMB_PIXELS), thumb)?;
    }
    let format = if format == ImageFormat::Gif {
        format
    } else {
        let clean = path.with_extension("clean");
        let written = match format {
            ImageFormat::Png => write_png(&image, &clean),
            _ => encode(&image, &clean),
        };
        // The copy replaces the upload, or goes: it never outlives this call.
        match written.and_then(|written| Ok(std::fs::rename(&clean, path).map(|()| written)?)) {
            Ok(written) => written,
            Err(error) => {
                let _ = std::fs::remove_file(&clean);
                return Err(error);
            }
        }
    };
    Ok(Prepared { width, height, format })
}

/// Makes an avatar from the image at `path`: the largest centred square, resized to
/// `side` pixels, written to `out`. Returns its format.
pub fn avatar(path: &Path, side: u32, out: &Path) -> Result<ImageFormat, ImageError> {
    let Kind::Raster(format) = sniff(path)? else { return Err(ImageError::NotAnImage) };
    let image = decode(path, format)?;
    let square = image.width().min(image.height());
    let (x, y) = ((image.width() - square) / 2, (image.height() - square) / 2);
    let cropped = image.crop_imm(x, y, square, square);
    let resized = cropped.resize_exact(side, side, image::imageops::FilterType::CatmullRom);
    encode(&resized, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn open(path: &Path) -> DynamicImage {
        ImageReader::open(path).unwrap().with_guessed_format().unwrap().decode().unwrap()
    }

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = DynamicImage::new_rgb8(width, height);
        let mut bytes = std::io::Cursor::new(Vec::new());
        image.write_to(&mut bytes, ImageFormat::Png).unwrap();
        bytes.into_inner()
    }

    #[test]
    fn types_come_from_bytes_not_names() {
        let dir = tempfile::tempdir().unwrap();
        let image = write(dir.path(), "notes.txt", &png(4, 4));
        assert_eq!(sniff(&image).unwrap(), Kind::Raster(ImageFormat::Png));
        let html = write(dir.path(), "cat.png", b"<html><script>alert(1)</script>");
        assert_eq!(sniff(&html).unwrap(), Kind::Other("text/plain"));
        let pdf = write(dir.path(), "x", b"%PDF-1.7\n...");
        assert_eq!(sniff(&pdf).unwrap(), Kind::Other("application/pdf"));
        let binary = write(dir.path(), "y", &[0, 159, 146, 150]);
        assert_eq!(sniff(&binary).unwrap(), Kind::Other("application/octet-stream"));
        assert_eq!(claimed_format("Cat.JPG"), Some(ImageFormat::Jpeg));
        assert_eq!(claimed_format("cat.svg"), None);
    }

    #[test]
    fn images_get_a_thumbnail_and_lose_their_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "wide.png", &png(1200, 600));
        let thumb = dir.path().join("wide.thumb");
        let prepared = prepare(&path, ImageFormat::Png, &thumb).unwrap();
        assert_eq!((prepared.width, prepared.height), (1200, 600));
        let small = open(&thumb);
        assert_eq!((small.width(), small.height()), (THUMB_PIXELS, THUMB_PIXELS / 2));
    }

    #[test]
    fn a_huge_image_is_refused_before_it_is_decoded() {
        // A valid PNG header that claims 100,000 × 100,000 pixels, in a few bytes.
        let mut header = png(1, 1);
        header[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        header[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "bomb.png", &header);
        let error = prepare(&path, ImageFormat::Png, &dir.path().join("t")).unwrap_err();
        assert!(matches!(error, ImageError::TooLarge | ImageError::Unreadable(_)), "{error}");
    }

    #[test]
    fn avatars_are_centred_squares() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "me.png", &png(300, 100));
        let out = dir.path().join("avatar");
        assert_eq!(avatar(&path, 128, &out).unwrap(), ImageFormat::Jpeg);
        let picture = open(&out);
        assert_eq!((picture.width(), picture.height()), (128, 128));
        let text = write(dir.path(), "me.txt", b"hello");
        assert!(matches!(avatar(&text, 128, &out), Err(ImageError::NotAnImage)));
    }
}

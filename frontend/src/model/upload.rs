//! Files on their way into the next message: each upload's progress and outcome, what
//! may be sent, and the words the composer shows. Pure: the uploading itself is in
//! `crate::files`.

use shared::api::human_size;
use shared::chat::{Attachment, MAX_FILES_PER_MESSAGE};

/// One file attached to the draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Unique within the page.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Bytes the server has taken so far.
    pub sent: u64,
    /// How it went.
    pub state: UploadState,
}

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadState {
    /// On its way.
    Sending,
    /// Stored: ready to go with the message.
    Done(Attachment),
    /// Refused or cut off, with why.
    Failed(String),
}

impl Upload {
    /// A new upload of `name`, `size` bytes long.
    pub fn new(id: u64, name: String, size: u64) -> Upload {
        Upload { id, name, size, sent: 0, state: UploadState::Sending }
    }

    /// How far along it is, 0 to 100.
    pub fn percent(&self) -> u32 {
        match self.state {
            UploadState::Done(_) => 100,
            _ if self.size == 0 => 0,
            _ => (self.sent.min(self.size) * 100 / self.size) as u32,
        }
    }

    /// What the chip says under its name.
    pub fn label(&self) -> String {
        match &self.state {
            UploadState::Sending => {
                format!("{} of {}", human_size(self.sent.min(self.size)), human_size(self.size))
            }
            UploadState::Done(file) => human_size(file.size),
            UploadState::Failed(reason) => reason.clone(),
        }
    }
}

/// Why a file cannot be uploaded here, said before it is sent: too large, or one too many.
pub fn refuse(name: &str, size: u64, max_bytes: u64, attached: usize) -> Option<String> {
    if attached >= MAX_FILES_PER_MESSAGE {
        return Some(format!("A message carries at most {MAX_FILES_PER_MESSAGE} files."));
    }
    if size == 0 {
        return Some(format!("{name} is empty."));
    }
    (max_bytes > 0 && size > max_bytes).then(|| {
        format!(
            "{name} is {}: this server takes files up to {}.",
            human_size(size),
            human_size(max_bytes)
        )
    })
}

/// The files ready to send, in the order attached.
pub fn ready(uploads: &[Upload]) -> Vec<Attachment> {
    uploads
        .iter()
        .filter_map(|upload| match &upload.state {
            UploadState::Done(file) => Some(file.clone()),
            _ => None,
        })
        .collect()
}

/// Some upload is still on its way: sending waits for it.
pub fn busy(uploads: &[Upload]) -> bool {
    uploads.iter().any(|upload| upload.state == UploadState::Sending)
}

/// The name of a pasted image, which has none of its own: `pasted-1.png`.
pub fn pasted_name(mime: &str, count: u64) -> String {
    let extension = match mime {
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => "png",
    };
    format!("pasted-{count}.{extension}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(id: &str, size: u64) -> Upload {
        let file = Attachment { id: id.into(), size, ..Attachment::default() };
        Upload { state: UploadState::Done(file), ..Upload::new(1, id.into(), size) }
    }

    #[test]
    fn only_finished_uploads_are_sent_and_sending_waits_for_the_rest() {
        let mut going = Upload::new(2, "big.zip".into(), 4_000_000);
        going.sent = 1_000_000;
        let failed = Upload { state: UploadState::Failed("no".into()), ..going.clone() };
        let list = [done("a", 10), going.clone(), failed];
        assert_eq!(ready(&list).len(), 1);
        assert!(busy(&list));
        assert_eq!(going.percent(), 25);
        assert_eq!(going.label(), "1.0 MB of 4.0 MB");
        assert!(!busy(&[done("a", 10)]));
    }

    #[test]
    fn the_limit_is_told_before_anything_is_sent() {
        let refusal = refuse("film.mov", 30_000_000, 25_000_000, 0).unwrap();
        assert_eq!(refusal, "film.mov is 30 MB: this server takes files up to 25 MB.");
        assert!(refuse("a.txt", 0, 25_000_000, 0).unwrap().contains("empty"));
        assert!(refuse("a.txt", 5, 25_000_000, MAX_FILES_PER_MESSAGE).is_some());
        assert_eq!(refuse("a.txt", 5, 25_000_000, 0), None);
    }

    #[test]
    fn pasted_images_get_names() {
        assert_eq!(pasted_name("image/png", 3), "pasted-3.png");
        assert_eq!(pasted_name("image/jpeg", 1), "pasted-1.jpg");
    }
}

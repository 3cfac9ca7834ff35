//! An interface this crate does not define, made over an attachment with
//! [`CardManager::create_interface`] (the service provider's
//! CreateInterface): a small "notes" applet on the simulated card's demo
//! application, keeping short notes in its record EF 5003 (SFI 3) and a
//! label in data object 5F50.
//!
//! ```text
//! cargo run -p ferroccid-card --example notes_applet
//! ```

use ferroccid_card::{CardInterface, CardManager, Disposition, Ef, Error, Result, Selection, Sfi};

/// The demo application's AID (`ferroccid_sim::card::fs::DEMO_AID`).
const DEMO_AID: &[u8] = &[0xF0, 0x46, 0x45, 0x52, 0x52, 0x4F, 0x43, 0x43, 0x49, 0x44];
/// The EF of the notes: linear variable, records of up to 64 bytes.
const NOTES_SFI: u8 = 3;
/// The data object holding the label.
const LABEL_TAG: u16 = 0x5F50;

/// The notes applet over one attachment.
pub struct Notes {
    card: CardManager,
}

impl CardInterface for Notes {
    /// Selects the application, so that its SFIs mean its files.
    fn create(card: CardManager) -> Result<Self> {
        card.file_access().select(Selection::DfName(DEMO_AID))?;
        Ok(Notes { card })
    }
}

impl Notes {
    fn notes_ef() -> Ef {
        Ef::Sfi(Sfi::new(NOTES_SFI).expect("SFI 3 is in range"))
    }

    /// Every note, oldest first.
    pub fn notes(&self) -> Result<Vec<String>> {
        let records = self.card.file_access().read_all_records(Self::notes_ef())?;
        Ok(records
            .into_iter()
            .map(|r| String::from_utf8_lossy(&r).into_owned())
            .collect())
    }

    /// Adds a note and reads the notes back, under the card's lock so no
    /// other attachment's commands come in between.
    pub fn add_note(&self, text: &str) -> Result<Vec<String>> {
        if text.is_empty() || text.len() > 64 {
            return Err(Error::InvalidRequest("a note has 1 to 64 bytes"));
        }
        let lock = self.card.lock(None)?;
        self.card
            .file_access()
            .append_record(Self::notes_ef(), text.as_bytes())?;
        let notes = self.notes()?;
        lock.unlock(Disposition::Leave)?;
        Ok(notes)
    }

    /// The label, if one was set.
    pub fn label(&self) -> Result<Option<String>> {
        match self.card.file_access().get_data(LABEL_TAG) {
            Ok(value) => Ok(Some(String::from_utf8_lossy(&value).into_owned())),
            Err(e) if e.sw().is_some_and(|sw| sw.0 == 0x6A88) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets the label.
    pub fn set_label(&self, label: &str) -> Result<()> {
        self.card
            .file_access()
            .put_data(LABEL_TAG, label.as_bytes())
    }

    /// The reader the applet's card is in.
    pub fn reader(&self) -> Result<String> {
        Ok(self.card.status()?.reader)
    }
}

/// What the example does; the test calls it too.
pub fn run(card: &CardManager) -> Result<Vec<String>> {
    let notes: Notes = card.create_interface()?;
    let mut lines = vec![format!("reader: {}", notes.reader()?)];
    lines.push(format!("label: {:?}", notes.label()?));
    notes.set_label("shopping")?;
    lines.push(format!("label: {:?}", notes.label()?));
    for note in notes.add_note("milk")? {
        lines.push(format!("note: {note}"));
    }
    Ok(lines)
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    ferroccid_sim::register();
    let card = CardManager::attach_by_ifd("sim", Default::default())?;
    for line in run(&card)? {
        println!("{line}");
    }
    card.detach(Disposition::Leave)?;
    Ok(())
}

//! The card's file system (ISO/IEC 7816-4 §7): MF, DFs, transparent and
//! record EFs, kept in an arena indexed by [`FileIndex`].

/// Index of a file in the [`FileSystem`] arena.
pub type FileIndex = usize;

/// The MF is always the first file.
pub const MF: FileIndex = 0;

/// Who may use a file for an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No condition.
    Always,
    /// After a successful VERIFY of the PIN.
    Pin,
    /// Never (6982).
    Never,
}

/// The structure of a record EF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// All records have this length.
    LinearFixed(usize),
    /// Records of any length up to this maximum.
    LinearVariable(usize),
}

/// File contents, by file category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// A dedicated file, optionally named by an application identifier.
    Dedicated {
        /// DF name (AID), if any.
        name: Option<Vec<u8>>,
        /// Children, in creation order.
        children: Vec<FileIndex>,
    },
    /// A transparent EF of fixed size.
    Transparent(Vec<u8>),
    /// A record EF.
    Records {
        /// Structure.
        kind: RecordKind,
        /// Records, record number n at index n-1.
        records: Vec<Vec<u8>>,
        /// Most records the file can hold.
        max_records: usize,
    },
}

/// One file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// File identifier.
    pub fid: u16,
    /// Short EF identifier (1..=30), if any.
    pub sfi: Option<u8>,
    /// Parent DF (`None` for the MF).
    pub parent: Option<FileIndex>,
    /// Condition to read.
    pub read: Access,
    /// Condition to update or append.
    pub write: Access,
    /// Contents.
    pub body: Body,
    /// Life cycle "operational, deactivated" (DEACTIVATE FILE, ISO/IEC
    /// 7816-9 §8.4) rather than "activated".
    pub deactivated: bool,
}

impl File {
    /// Whether the file is a DF.
    pub fn is_df(&self) -> bool {
        matches!(self.body, Body::Dedicated { .. })
    }
}

/// A tree of files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSystem {
    files: Vec<File>,
}

/// The fictional AID of the demo application: category 'F' (unregistered,
/// proprietary, ISO/IEC 7816-5) followed by ASCII "FERROCCID".
pub const DEMO_AID: &[u8] = &[0xF0, 0x46, 0x45, 0x52, 0x52, 0x4F, 0x43, 0x43, 0x49, 0x44];
/// FID of the demo application DF.
pub const DEMO_DF: u16 = 0x5000;
/// Text of EF 2F00 in the MF.
pub const TEXT_2F00: &[u8] = b"Hello from the ferroccid virtual card.\n";
/// Text of EF 2F01 in the MF.
pub const TEXT_2F01: &[u8] = b"This card is simulated; its files follow ISO/IEC 7816-4.\n";
/// Text of PIN-protected EF 5001 in the demo DF.
pub const TEXT_SECRET: &[u8] = b"The secret is only readable after VERIFY.\n";
/// Size of the large transparent EF 5010 (for extended-length tests).
pub const LARGE_EF_SIZE: usize = 70_000;

/// Byte `i` of the large EF 5010: `i mod 251` (251 is prime, so the pattern
/// does not repeat at any power-of-two block size).
pub fn large_ef_byte(i: usize) -> u8 {
    (i % 251) as u8
}

impl FileSystem {
    /// An MF alone.
    pub fn new() -> Self {
        FileSystem {
            files: vec![File {
                fid: 0x3F00,
                sfi: None,
                parent: None,
                read: Access::Always,
                write: Access::Always,
                body: Body::Dedicated {
                    name: None,
                    children: Vec::new(),
                },
                deactivated: false,
            }],
        }
    }

    /// Adds a file under `parent` (a DF) and returns its index.
    pub fn add(&mut self, parent: FileIndex, mut file: File) -> FileIndex {
        let index = self.files.len();
        file.parent = Some(parent);
        match &mut self.files[parent].body {
            Body::Dedicated { children, .. } => children.push(index),
            _ => panic!("parent of a file must be a DF"),
        }
        self.files.push(file);
        index
    }

    /// The file at `index`.
    pub fn get(&self, index: FileIndex) -> &File {
        &self.files[index]
    }

    /// The file at `index`, mutably.
    pub fn get_mut(&mut self, index: FileIndex) -> &mut File {
        &mut self.files[index]
    }

    /// Unlinks `index` (and with it everything under it) from its parent
    /// DF (DELETE FILE, ISO/IEC 7816-9 §8.3). The arena keeps the entry,
    /// so other indexes stay valid; nothing reaches it any more.
    pub fn remove(&mut self, index: FileIndex) {
        let Some(parent) = self.files[index].parent else {
            return;
        };
        if let Body::Dedicated { children, .. } = &mut self.files[parent].body {
            children.retain(|&c| c != index);
        }
    }

    /// Children of a DF (empty for an EF).
    pub fn children(&self, df: FileIndex) -> &[FileIndex] {
        match &self.files[df].body {
            Body::Dedicated { children, .. } => children,
            _ => &[],
        }
    }

    /// Child of `df` with identifier `fid`.
    pub fn child(&self, df: FileIndex, fid: u16) -> Option<FileIndex> {
        self.children(df)
            .iter()
            .copied()
            .find(|&c| self.files[c].fid == fid)
    }

    /// EF child of `df` with short identifier `sfi`.
    pub fn child_by_sfi(&self, df: FileIndex, sfi: u8) -> Option<FileIndex> {
        self.children(df)
            .iter()
            .copied()
            .find(|&c| self.files[c].sfi == Some(sfi))
    }

    /// First DF whose name starts with `name` (exact or right-truncated),
    /// among the files still in the tree.
    pub fn df_by_name(&self, name: &[u8]) -> Option<FileIndex> {
        (0..self.files.len()).find(|&i| match &self.files[i].body {
            Body::Dedicated { name: Some(n), .. } => {
                !name.is_empty() && n.starts_with(name) && self.in_tree(i)
            }
            _ => false,
        })
    }

    /// Whether `index` is still reachable from the MF (not deleted, nor
    /// under a deleted DF).
    fn in_tree(&self, mut index: FileIndex) -> bool {
        while let Some(parent) = self.files[index].parent {
            if !self.children(parent).contains(&index) {
                return false;
            }
            index = parent;
        }
        index == MF
    }

    /// The default personalisation used by the demo and the tests:
    ///
    /// ```text
    /// MF 3F00
    /// ├── EF 2F00 transparent, TEXT_2F00, read always, update never
    /// ├── EF 2F01 transparent, TEXT_2F01, read/update always
    /// └── DF 5000 named DEMO_AID
    ///     ├── EF 5001 (SFI 1) transparent TEXT_SECRET, read/update after PIN
    ///     ├── EF 5002 (SFI 2) linear fixed, 3 records of 16 bytes, max 5
    ///     ├── EF 5003 (SFI 3) linear variable, 2 records ("first", "second record"), max 10 of <= 64
    ///     └── EF 5010 (SFI 16) transparent, 70000 bytes, byte i = i mod 251
    /// ```
    /// Records of 5002: record n = 16 bytes of value n.
    pub fn demo() -> Self {
        let mut fs = FileSystem::new();
        let ef = |fid: u16, sfi: Option<u8>, read, write, body| File {
            fid,
            sfi,
            parent: None,
            read,
            write,
            body,
            deactivated: false,
        };
        fs.add(
            MF,
            ef(
                0x2F00,
                None,
                Access::Always,
                Access::Never,
                Body::Transparent(TEXT_2F00.to_vec()),
            ),
        );
        fs.add(
            MF,
            ef(
                0x2F01,
                None,
                Access::Always,
                Access::Always,
                Body::Transparent(TEXT_2F01.to_vec()),
            ),
        );
        let df = fs.add(
            MF,
            ef(
                DEMO_DF,
                None,
                Access::Always,
                Access::Always,
                Body::Dedicated {
                    name: Some(DEMO_AID.to_vec()),
                    children: Vec::new(),
                },
            ),
        );
        fs.add(
            df,
            ef(
                0x5001,
                Some(1),
                Access::Pin,
                Access::Pin,
                Body::Transparent(TEXT_SECRET.to_vec()),
            ),
        );
        fs.add(
            df,
            ef(
                0x5002,
                Some(2),
                Access::Always,
                Access::Always,
                Body::Records {
                    kind: RecordKind::LinearFixed(16),
                    records: (1..=3).map(|n| vec![n; 16]).collect(),
                    max_records: 5,
                },
            ),
        );
        fs.add(
            df,
            ef(
                0x5003,
                Some(3),
                Access::Always,
                Access::Always,
                Body::Records {
                    kind: RecordKind::LinearVariable(64),
                    records: vec![b"first".to_vec(), b"second record".to_vec()],
                    max_records: 10,
                },
            ),
        );
        let large = (0..LARGE_EF_SIZE).map(large_ef_byte).collect();
        fs.add(
            df,
            ef(
                0x5010,
                Some(16),
                Access::Always,
                Access::Always,
                Body::Transparent(large),
            ),
        );
        fs
    }
}

impl Default for FileSystem {
    fn default() -> Self {
        FileSystem::demo()
    }
}

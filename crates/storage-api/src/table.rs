//! Typed tables and the schema that lists them.
//!
//! A table is a type implementing [`Table`]: its name, key type and value type are fixed at
//! compile time, so call sites never name a table with a string. A [`Schema`] collects the
//! tables of one database together with the schema's name and version; backends create one
//! physical table (column family, redb table, sled tree…) per entry.

use crate::codec::{KeyCodec, ValueCodec};

/// A typed table.
pub trait Table: 'static {
    /// The table's name on disk. Unique within a schema; must not start with `__`
    /// (reserved for storage-api's own tables).
    const NAME: &'static str;
    /// How the table is read, a hint backends use to tune it.
    const ACCESS: Access = Access::Mixed;
    /// The key type, with an order-preserving encoding.
    type Key: KeyCodec;
    /// The value type, with a versioned encoding.
    type Value: ValueCodec;
}

/// How a table is mostly read. Backends turn this into per-table tuning (for RocksDB: bloom
/// filters for point lookups, none for tables that are only scanned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// Mostly point reads by full key.
    Point,
    /// Mostly range or prefix scans.
    Range,
    /// Both.
    Mixed,
}

/// A table's entry in a [`Schema`], with no type information.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableDef {
    /// The table's name on disk.
    pub name: &'static str,
    /// Its access hint.
    pub access: Access,
}

impl TableDef {
    /// The definition of table `T`.
    pub const fn of<T: Table>() -> Self {
        TableDef { name: T::NAME, access: T::ACCESS }
    }
}

/// The name of storage-api's own table holding the schema record.
pub const META_TABLE: &str = "__schema";

/// The tables of one database, with the schema's name and version.
///
/// The name identifies what kind of database this is (for example `chain`); the version is
/// raised by every change to the on-disk layout and is checked on open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    name: &'static str,
    version: u32,
    tables: Vec<TableDef>,
}

impl Schema {
    /// A schema with no tables yet.
    pub fn new(name: &'static str, version: u32) -> Self {
        Schema { name, version, tables: Vec::new() }
    }

    /// Adds table `T`.
    ///
    /// # Panics
    /// If a table of the same name is already present, or the name is reserved (starts with
    /// `__`) or empty: both are programming errors in the schema definition.
    pub fn with<T: Table>(mut self) -> Self {
        let def = TableDef::of::<T>();
        assert!(!def.name.is_empty() && !def.name.starts_with("__"), "reserved table name {:?}", def.name);
        assert!(self.table(def.name).is_none(), "table {:?} declared twice", def.name);
        self.tables.push(def);
        self
    }

    /// The schema's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The schema's version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The user tables, in declaration order.
    pub fn tables(&self) -> &[TableDef] {
        &self.tables
    }

    /// Looks a table up by name.
    pub fn table(&self, name: &str) -> Option<&TableDef> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// Every physical table the backend must create: the user tables plus [`META_TABLE`].
    pub fn physical_tables(&self) -> impl Iterator<Item = &'static str> + '_ {
        std::iter::once(META_TABLE).chain(self.tables.iter().map(|t| t.name))
    }

    /// Whether `name` is a physical table of this schema.
    pub fn has_physical(&self, name: &str) -> bool {
        name == META_TABLE || self.table(name).is_some()
    }
}

/// Declares table types.
///
/// ```
/// use storage_api::{table, codec::Blob};
/// table! {
///     /// Raw transactions by hash.
///     pub struct Transactions("transactions"): [u8; 32] => Blob;
///     /// Block hash by height, scanned in ranges.
///     pub struct Canonical("canonical", Range): u64 => [u8; 32];
/// }
/// ```
#[macro_export]
macro_rules! table {
    ($(
        $(#[$meta:meta])*
        $vis:vis struct $ty:ident($name:literal $(, $access:ident)?): $key:ty => $value:ty;
    )*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        $vis struct $ty;
        impl $crate::table::Table for $ty {
            const NAME: &'static str = $name;
            $(const ACCESS: $crate::table::Access = $crate::table::Access::$access;)?
            type Key = $key;
            type Value = $value;
        }
    )*};
}

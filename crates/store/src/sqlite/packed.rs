//! [`PackedPage`]: a page of the ledger read for verification as one row.
//!
//! Read row by row, sqlx copies every column of every record and sends each
//! row across threads (2.6 µs a record, most of what verifying cost). Here
//! SQLite concatenates a page's columns itself (`group_concat`, in one pass
//! over the rows, so every column comes in the same order), with the
//! numbers, sizes and types that say where each record's fields are.
//!
//! This is only a quicker way to the same answer: anything unexpected in a
//! page — a type the row-by-row decoder would refuse, bytes that do not
//! decode, numbers out of order — makes [`PackedPage::digests`] give up,
//! and the page is read again row by row, whose decoder says what is
//! wrong exactly as it always has.

use clearance_engine::ledger::{Digest32, RecordDigests};
use sqlx::{Row, SqlitePool, sqlite::SqliteRow};

use crate::{
    StoreError,
    codec::int,
    decode::{PAGE_BYTES, max_field},
    stored,
    verify::{VerifyPage, until_modified},
};

/// One page: `count` records after the one asked for, `last` the newest,
/// and the row whose columns hold them (read in place, not copied).
pub struct PackedPage {
    count: usize,
    last: Option<u64>,
    row: SqliteRow,
}

/// The row's columns, besides `count` and `last`:
///
/// - `encoding`: the file's text encoding: only in UTF-8 are SQLite's
///   concatenated texts the bytes the row reader gets (in UTF-16, SQLite
///   converts them and counts their lengths in UTF-16);
/// - `plain`: how many records have a `seq` that is the row's own key,
///   text `at` and `kind` within their bound ([`stored::MAX_FIELD`]: the
///   row reader refuses a longer one), a text or blob payload, and hashes
///   of the two forms the row reader takes (32 bytes, or 64 characters of
///   text); every record, or the page is left to it;
/// - `seqs`: the records' numbers, space-separated;
/// - `sizes`: each payload's length in bytes, doubled, plus one if it is
///   text (format 1), space-separated;
/// - `at`, `kind`: those fields, newline-separated (a newline inside one
///   shows as a piece too many);
/// - `payload`: the payloads end to end;
/// - `prev_hash`, `hash`: the hashes as 32 bytes each, end to end (SQLite's
///   `unhex` of a format 1 hex hash; NULL, so missing, if not hex).
///
/// Types are told by comparison, where `typeof` is a function call:
/// SQLite orders every number before every text, and every text before
/// every blob (`x''`, the empty blob, is the least). The unary `+` takes
/// the column's affinity away, without which a number compared with a
/// string is first turned into text (a file edited around its schema can
/// hold a number in a TEXT column). The page is the records numbered in
/// `(after, after + limit]`, read straight from the table: a `LIMIT`
/// subquery copied every value once more on its way to the aggregates.
/// The two made SQLite's part of verifying ~25 % cheaper (0.44 s against
/// 0.59–0.66 s for 419k records).
///
/// A page whose concatenated columns would hold more than [`PAGE_BYTES`]
/// together (`?3`) is not concatenated: it comes back empty, short, so
/// the row reader reads it, a bounded page at a time. Without it, a file
/// of large text payloads made SQLite build a page of up to a gigabyte,
/// copied once more into the row (a 900 MB file verified at a 1.8 GB
/// peak); a hostile file can make `at`, `kind` or a hash as large. Their
/// sizes come from each record's header (`octet_length` reads no value),
/// before any is read.
const QUERY: &str = concat!(
    "
SELECT count(*) AS count, max(seq) AS last,
       (SELECT encoding FROM pragma_encoding) AS encoding,
       sum(+seq = +rowid AND +at >= '' AND +at < x'' AND +kind >= '' AND +kind < x''
           AND octet_length(at) <= ",
    max_field!(),
    " AND octet_length(kind) <= ",
    max_field!(),
    "
           AND +payload >= ''
           AND iif(+prev_hash >= x'', octet_length(prev_hash) = 32,
                   +prev_hash >= '' AND octet_length(prev_hash) = 64)
           AND iif(+hash >= x'', octet_length(hash) = 32,
                   +hash >= '' AND octet_length(hash) = 64)) AS plain,
       group_concat(seq, ' ') AS seqs,
       group_concat(octet_length(payload) * 2 + (+payload < x''), ' ') AS sizes,
       CAST(group_concat(at, char(10)) AS BLOB) AS at,
       CAST(group_concat(kind, char(10)) AS BLOB) AS kind,
       CAST(group_concat(payload, '') AS BLOB) AS payload,
       CAST(group_concat(iif(+prev_hash >= x'', prev_hash, unhex(prev_hash)), '')
            AS BLOB) AS prev_hash,
       CAST(group_concat(iif(+hash >= x'', hash, unhex(hash)), '') AS BLOB) AS hash
FROM ledger WHERE seq > ?1 AND seq <= ?1 + ?2
  AND (SELECT coalesce(sum(coalesce(octet_length(payload), 0) + coalesce(octet_length(at), 0)
                           + coalesce(octet_length(kind), 0) + coalesce(octet_length(prev_hash), 0)
                           + coalesce(octet_length(hash), 0)), 0)
       FROM ledger WHERE seq > ?1 AND seq <= ?1 + ?2) <= ?3"
);

/// Whether the ledger is read from its own table, keyed by `seq`: a rowid
/// table whose one-column primary key is `seq`, declared `INTEGER`, with no
/// index of its own (a primary key that is not the rowid, `INTEGER PRIMARY
/// KEY DESC` say, gets one), and no index on anything but `kind` and `seq`
/// (an index holding every column verification reads, lying or not, could
/// be read in the table's place). Then both readers read the table's rows
/// by its key, and no statistics or plan can set them apart; a file whose
/// schema was made otherwise is read by the row reader alone. So is a file
/// whose text is not UTF-8: there every packed page would be read, refused
/// ([`PackedPage::layouts`]) and read again row by row, and the UTF-8 the
/// row gets of SQLite's UTF-16 can be half as large again as the size
/// check counted.
const ROWID_SCHEMA: &str = "
SELECT (SELECT encoding FROM pragma_encoding) = 'UTF-8'
   AND (SELECT count(*) FROM pragma_table_list
         WHERE schema = 'main' AND name = 'ledger' AND type = 'table' AND wr = 0) = 1
   AND (SELECT count(*) FROM pragma_table_info('ledger') WHERE pk > 0) = 1
   AND (SELECT count(*) FROM pragma_table_info('ledger')
         WHERE pk = 1 AND name = 'seq' AND upper(type) = 'INTEGER') = 1
   AND (SELECT count(*) FROM pragma_index_list('ledger') WHERE origin = 'pk') = 0
   AND (SELECT count(*) FROM pragma_index_list('ledger') AS list,
               pragma_index_xinfo(list.name) AS info
         WHERE info.key AND (info.name IS NULL OR info.name NOT IN ('kind', 'seq'))) = 0";

/// Whether the packed read may be used on this file ([`ROWID_SCHEMA`]).
pub(crate) async fn sound(pool: &SqlitePool) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar(ROWID_SCHEMA).fetch_one(pool).await?)
}

/// Up to `limit` records after `after`, packed.
pub(crate) async fn read(
    pool: &SqlitePool,
    after: u64,
    limit: u32,
) -> Result<PackedPage, StoreError> {
    let row = sqlx::query(QUERY)
        .bind(int(after))
        .bind(i64::from(limit))
        .bind(int(PAGE_BYTES as u64))
        .fetch_one(pool)
        .await?;
    let count: i64 = row.try_get("count")?;
    let last: Option<i64> = row.try_get("last")?;
    Ok(PackedPage {
        count: usize::try_from(count)
            .map_err(|_| StoreError::corrupt(format!("a page of {count} records")))?,
        last: last.and_then(|last| u64::try_from(last).ok()),
        row,
    })
}

/// One record's fields, found in the page's columns.
struct Layout<'a> {
    seq: u64,
    at: &'a [u8],
    kind: &'a [u8],
    /// Its SQLite type (blob: format 2) and bytes.
    payload: (bool, &'a [u8]),
    prev_hash: Digest32,
    hash: Digest32,
}

impl PackedPage {
    fn column(&self, name: &str) -> Option<&[u8]> {
        let bytes: Option<&[u8]> = self.row.try_get(name).ok()?;
        Some(bytes.unwrap_or_default())
    }

    fn list(&self, name: &str) -> Option<impl Iterator<Item = &str>> {
        let text: Option<&str> = self.row.try_get(name).ok()?;
        Some(
            text.unwrap_or_default()
                .split(' ')
                .filter(|item| !item.is_empty()),
        )
    }

    /// Each record's fields, in order, or `None` when the columns do not
    /// account for exactly `count` plain records with rising numbers.
    fn layouts(&self) -> Option<Vec<Layout<'_>>> {
        let encoding: &str = self.row.try_get("encoding").ok()?;
        let plain: Option<i64> = self.row.try_get("plain").ok()?;
        if encoding != "UTF-8" || usize::try_from(plain.unwrap_or(0)).ok()? != self.count {
            return None;
        }
        let pieces = |name| -> Option<Vec<&[u8]>> {
            let column = self.column(name)?;
            let pieces: Vec<&[u8]> = match self.count {
                0 => Vec::new(),
                _ => column.split(|&byte| byte == b'\n').collect(),
            };
            (pieces.len() == self.count).then_some(pieces)
        };
        let (at, kind) = (pieces("at")?, pieces("kind")?);
        let hashes = |name| -> Option<Vec<Digest32>> {
            let column = self.column(name)?;
            let hashes: Vec<Digest32> = column
                .chunks_exact(32)
                .map(stored::decode_digest)
                .collect::<Result<_, _>>()
                .ok()?;
            (column.len() == 32 * self.count).then_some(hashes)
        };
        let (prev_hash, hash) = (hashes("prev_hash")?, hashes("hash")?);
        let mut payloads = Cursor::new(self.column("payload")?);
        let mut sizes = self.list("sizes")?;
        let mut previous = 0;
        let mut layouts = Vec::with_capacity(self.count);
        for seq in self.list("seqs")? {
            let seq: u64 = seq.parse().ok()?;
            let size: usize = sizes.next()?.parse().ok()?;
            let index = layouts.len();
            if seq <= previous {
                return None;
            }
            previous = seq;
            layouts.push(Layout {
                seq,
                at: at.get(index)?,
                kind: kind.get(index)?,
                payload: (size.is_multiple_of(2), payloads.take(size / 2)?),
                prev_hash: *prev_hash.get(index)?,
                hash: *hash.get(index)?,
            });
        }
        let whole = layouts.len() == self.count
            && sizes.next().is_none()
            && payloads.is_done()
            && layouts.last().map(|l| l.seq) == self.last;
        whole.then_some(layouts)
    }
}

/// Takes the next `len` bytes of a column.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, at: 0 }
    }

    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(len)?;
        let taken = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(taken)
    }

    fn is_done(&self) -> bool {
        self.at == self.bytes.len()
    }
}

/// One record's digests, decoded as the row-by-row reader decodes it (a
/// compressed payload into `buffer`, reused from record to record).
fn digests(layout: &Layout<'_>, buffer: &mut Vec<u8>) -> Option<RecordDigests> {
    let at = std::str::from_utf8(layout.at).ok()?;
    let kind = std::str::from_utf8(layout.kind).ok()?;
    let payload = match layout.payload {
        (true, body) => stored::decode_payload_in(body, buffer).ok()?,
        // A text payload past the bound is a break: the row reader names it.
        (false, text) if text.len() as u64 > stored::MAX_PAYLOAD => return None,
        (false, text) => std::str::from_utf8(text).ok()?,
    };
    Some(RecordDigests::of(
        layout.seq,
        at,
        kind,
        payload,
        layout.prev_hash,
        layout.hash,
    ))
}

impl VerifyPage for PackedPage {
    fn count(&self) -> usize {
        self.count
    }

    /// Every concatenated column, and the lists of numbers and sizes (a
    /// few dozen bytes a record).
    fn bytes(&self) -> usize {
        ["payload", "at", "kind", "prev_hash", "hash"]
            .into_iter()
            .map(|name| self.column(name).map_or(0, <[u8]>::len))
            .fold(self.count.saturating_mul(48), usize::saturating_add)
    }

    /// Decompressing and hashing are most of the work, on a thread of its
    /// own ([`crate::verify`] has several pages on their way at once), and
    /// stop at the page's first modified record ([`until_modified`]).
    fn digests(self) -> Option<Vec<RecordDigests>> {
        let mut buffer = Vec::new();
        until_modified(
            self.layouts()?
                .iter()
                .map(|layout| digests(layout, &mut buffer)),
        )
    }
}

#[cfg(test)]
mod tests;

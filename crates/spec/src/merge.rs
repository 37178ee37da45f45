//! Merging a job's layers: the job file wins over its profile, which wins
//! over `[defaults]`. Single values and lists come whole from the first layer
//! that sets them; tables (`env`, `labels`, `ulimits`, `log`, `health`,
//! `update`) merge key by key.

use toml::Spanned;

use crate::model::Origin;
use crate::raw::RawJob;
use crate::source::Loc;

/// One layer of job keys, the file it came from and the table it sits in.
#[derive(Clone)]
pub(crate) struct Layer<'a> {
    pub file: usize,
    pub origin: Origin,
    pub job: &'a RawJob,
}

/// A value and where it was written.
pub(crate) struct Picked<'a, T> {
    pub loc: Loc,
    pub origin: Origin,
    pub value: &'a T,
}

/// The first layer (job, then profile, then defaults) that sets a key.
pub(crate) fn pick<'a, T>(
    layers: &[Layer<'a>],
    get: impl Fn(&'a RawJob) -> Option<&'a Spanned<T>>,
) -> Option<Picked<'a, T>> {
    layers.iter().find_map(|layer| {
        get(layer.job).map(|v| Picked {
            loc: Loc {
                file: layer.file,
                span: v.span(),
            },
            origin: layer.origin.clone(),
            value: v.get_ref(),
        })
    })
}

/// The layers of a merged table (`log`, `health`, `update`), job first.
pub(crate) fn tables<'a, R>(
    layers: &[Layer<'a>],
    get: impl Fn(&'a RawJob) -> Option<&'a Spanned<R>>,
) -> Vec<(usize, &'a Spanned<R>)> {
    layers
        .iter()
        .filter_map(|l| get(l.job).map(|t| (l.file, t)))
        .collect()
}

/// Like [`pick`], inside a table that merges key by key.
pub(crate) fn pick_in<'a, R, T>(
    tables: &[(usize, &'a Spanned<R>)],
    get: impl Fn(&'a R) -> Option<&'a Spanned<T>>,
) -> Option<(Loc, &'a T)> {
    tables.iter().find_map(|(file, table)| {
        get(table.get_ref()).map(|v| {
            (
                Loc {
                    file: *file,
                    span: v.span(),
                },
                v.get_ref(),
            )
        })
    })
}

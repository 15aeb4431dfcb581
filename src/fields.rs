//! The contract's fields, defined once. Employees, departments and memberships
//! are each an enum of their columns; the SQL column lists, the CSV headers of
//! `import`, the probe's checks, the payload builder's cell access and the OpenAPI
//! schema are all derived from these lists, so adding or reordering a field is
//! one edit here (and the compiler then points at every `match` to extend).
//!
//! The column names are OMFLOW's own field names (the schema follows them), so one
//! name serves the database, the CSV files and the JSON.
//!
//! This module imports nothing: it sits at the bottom of the module graph.

/// A field list: an enum whose variants, in declaration order, are the columns.
pub trait Field: Copy + Eq + std::fmt::Debug + 'static {
    /// Every field, in column order.
    const ALL: &'static [Self];
    /// The column (and JSON) name.
    fn name(self) -> &'static str;
    /// The field's place in [`Field::ALL`].
    fn index(self) -> usize;
}

/// Declares a field enum: its variants with their column names, in order.
macro_rules! field_list {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $column:literal,)* }
        columns $columns:ident;
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant,)* }

        impl $name {
            /// Every field, in column order.
            pub const ALL: [Self; [$(stringify!($variant)),*].len()] = [$(Self::$variant),*];

            /// The column (and JSON) name.
            pub const fn name(self) -> &'static str {
                match self { $(Self::$variant => $column,)* }
            }

            /// The field's place in `ALL` (declaration order is its order).
            pub const fn index(self) -> usize {
                self as usize
            }
        }

        impl Field for $name {
            const ALL: &'static [Self] = &$name::ALL;
            fn name(self) -> &'static str {
                $name::name(self)
            }
            fn index(self) -> usize {
                $name::index(self)
            }
        }

        /// The column names, in column order.
        pub const $columns: [&str; $name::ALL.len()] = [$($column),*];
    };
}

/// The names of the required fields of `$field`, as an array of `$n` (checked
/// when compiled). A macro: `const` code cannot call through a trait.
macro_rules! required_names {
    ($field:ident, $n:literal) => {{
        let mut out = [""; $n];
        let (mut i, mut n) = (0, 0);
        while i < $field::ALL.len() {
            let field = $field::ALL[i];
            if field.required() {
                assert!(n < $n, "more required fields than the array holds");
                out[n] = field.name();
                n += 1;
            }
            i += 1;
        }
        assert!(n == $n, "fewer required fields than the array holds");
        out
    }};
}

field_list! {
    /// The fields of an employee that `/sync` serves (its `user_info_list`
    /// entries, in this order).
    pub enum EmployeeField {
        /// The login account: unique, the key.
        Username = "username",
        /// Unique, compared case-insensitively.
        Email = "email",
        /// The person's display name.
        NickName = "nick_name",
        /// Employee number.
        AdNo = "ad_no",
        Company = "company",
        /// Office phone.
        Phone1 = "phone1",
        /// Mobile.
        Phone2 = "phone2",
        ExtensionNo = "extension_no",
        /// `male`, `female` or nothing.
        Gender = "gender",
    }
    columns EMPLOYEE_COLUMNS;
}

field_list! {
    /// The fields of a department (its `group_info_list` entry holds them and
    /// its `user_list`).
    pub enum DepartmentField {
        /// The department code: unique, the key.
        GroupNo = "group_no",
        DisplayName = "display_name",
        /// The parent's `group_no`; NULL (served as `""`) for a root.
        ParentGroupNo = "parent_group_no",
    }
    columns DEPARTMENT_COLUMNS;
}

field_list! {
    /// The columns of one membership of an employee in a department.
    pub enum MembershipField {
        GroupNo = "group_no",
        Username = "username",
    }
    columns MEMBERSHIP_COLUMNS;
}

/// Whether a row is served: a boolean column of employees and departments (and
/// optional in a mapped source's queries).
pub const ACTIVE: &str = "active";
/// The stored password hash of an employee (never served by `/sync`).
pub const PASSWORD_HASH: &str = "password_hash";

/// The `employees` table's columns: the served fields, the hash, `active`.
pub const EMPLOYEE_TABLE: [&str; 11] = join(EMPLOYEE_COLUMNS, [PASSWORD_HASH, ACTIVE]);
/// The `departments` table's columns: the fields, then `active`.
pub const DEPARTMENT_TABLE: [&str; 4] = join(DEPARTMENT_COLUMNS, [ACTIVE]);
/// An employees query's columns when it returns `active`.
pub const EMPLOYEE_COLUMNS_ACTIVE: [&str; 10] = join(EMPLOYEE_COLUMNS, [ACTIVE]);

/// The employee fields with a NOT NULL column (an import row must fill them).
pub const EMPLOYEE_REQUIRED: [&str; 3] = required_names!(EmployeeField, 3);
/// The department fields with a NOT NULL column.
pub const DEPARTMENT_REQUIRED: [&str; 2] = required_names!(DepartmentField, 2);

impl EmployeeField {
    /// Whether the column is NOT NULL.
    pub const fn required(self) -> bool {
        matches!(self, Self::Username | Self::Email | Self::NickName)
    }

    /// What the OpenAPI document says about the field, and the pattern its
    /// value matches.
    pub const fn doc(self) -> (Option<&'static str>, Option<&'static str>) {
        match self {
            Self::Username => (Some("Unique login account."), None),
            Self::Email => (Some("Unique, compared case-insensitively."), None),
            Self::NickName => (Some("The person's display name."), None),
            Self::AdNo => (Some("Employee number."), None),
            Self::Phone1 => (Some("Office phone."), None),
            Self::Phone2 => (Some("Mobile."), None),
            Self::Gender => (
                Some("`\"male\"`, `\"female\"` or `\"\"`."),
                Some("^(male|female)?$"),
            ),
            Self::Company | Self::ExtensionNo => (None, None),
        }
    }
}

impl DepartmentField {
    /// The order of a `group_info_list` entry's own fields (its `user_list`
    /// follows them): OMFLOW's, which is not the table's.
    pub const PAYLOAD_ORDER: [Self; 3] = [Self::DisplayName, Self::GroupNo, Self::ParentGroupNo];

    /// The field's place in [`Self::PAYLOAD_ORDER`].
    pub const fn payload_index(self) -> usize {
        let mut i = 0;
        while i < Self::PAYLOAD_ORDER.len() {
            if Self::PAYLOAD_ORDER[i] as usize == self as usize {
                return i;
            }
            i += 1;
        }
        panic!("a department field missing from PAYLOAD_ORDER")
    }

    /// Whether the column is NOT NULL.
    pub const fn required(self) -> bool {
        matches!(self, Self::GroupNo | Self::DisplayName)
    }

    /// What the OpenAPI document says about the field, and its pattern.
    pub const fn doc(self) -> (Option<&'static str>, Option<&'static str>) {
        match self {
            Self::GroupNo => (Some("Unique department code."), None),
            Self::ParentGroupNo => (
                Some("An active department's `group_no`, or `\"\"` for a root."),
                None,
            ),
            Self::DisplayName => (None, None),
        }
    }
}

/// `a` then `b`; `M` must be their length together (checked when compiled).
pub const fn join<const N: usize, const K: usize, const M: usize>(
    a: [&'static str; N],
    b: [&'static str; K],
) -> [&'static str; M] {
    assert!(N + K == M, "join: the result's length must be N + K");
    let mut out = [""; M];
    let mut i = 0;
    while i < N {
        out[i] = a[i];
        i += 1;
    }
    while i < M {
        out[i] = b[i - N];
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names<F: Field>() -> Vec<&'static str> {
        F::ALL.iter().map(|f| f.name()).collect()
    }

    #[test]
    fn column_lists_follow_the_enums() {
        assert_eq!(names::<EmployeeField>(), EMPLOYEE_COLUMNS);
        assert_eq!(names::<DepartmentField>(), DEPARTMENT_COLUMNS);
        assert_eq!(names::<MembershipField>(), MEMBERSHIP_COLUMNS);
        for (i, field) in EmployeeField::ALL.iter().enumerate() {
            assert_eq!(Field::index(*field), i);
        }
        for (i, field) in DepartmentField::ALL.iter().enumerate() {
            assert_eq!(Field::index(*field), i);
        }
    }

    #[test]
    fn tables_add_the_stored_columns() {
        assert_eq!(&EMPLOYEE_TABLE[..9], &EMPLOYEE_COLUMNS[..]);
        assert_eq!(&EMPLOYEE_TABLE[9..], &[PASSWORD_HASH, ACTIVE]);
        assert_eq!(
            DEPARTMENT_TABLE,
            ["group_no", "display_name", "parent_group_no", "active"]
        );
        assert_eq!(EMPLOYEE_REQUIRED, ["username", "email", "nick_name"]);
        assert_eq!(DEPARTMENT_REQUIRED, ["group_no", "display_name"]);
    }

    #[test]
    fn department_payload_order_is_a_permutation() {
        let mut order = DepartmentField::PAYLOAD_ORDER.to_vec();
        order.sort();
        assert_eq!(order, DepartmentField::ALL.to_vec());
        for (i, field) in DepartmentField::PAYLOAD_ORDER.iter().enumerate() {
            assert_eq!(field.payload_index(), i);
        }
    }

    #[test]
    fn names_need_no_json_escaping() {
        // The payload writer writes them between quotes as they are.
        let all = names::<EmployeeField>()
            .into_iter()
            .chain(names::<DepartmentField>())
            .chain(names::<MembershipField>());
        for name in all {
            assert!(
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
        }
    }
}

-- The HR directory that HR staff edit: departments, employees and who belongs where.
CREATE TABLE departments (
    group_no        TEXT PRIMARY KEY NOT NULL,
    display_name    TEXT NOT NULL,
    parent_group_no TEXT NULL REFERENCES departments (group_no) ON UPDATE CASCADE,
    active          BOOLEAN NOT NULL DEFAULT TRUE
);
CREATE INDEX departments_parent_idx ON departments (parent_group_no);

CREATE TABLE employees (
    username      TEXT PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL UNIQUE,
    nick_name     TEXT NOT NULL,
    ad_no         TEXT NULL,
    company       TEXT NULL,
    phone1        TEXT NULL,
    phone2        TEXT NULL,
    extension_no  TEXT NULL,
    gender        TEXT NULL,
    password_hash TEXT NULL,
    active        BOOLEAN NOT NULL DEFAULT TRUE
);

CREATE TABLE department_members (
    group_no TEXT NOT NULL REFERENCES departments (group_no) ON UPDATE CASCADE ON DELETE CASCADE,
    username TEXT NOT NULL REFERENCES employees (username) ON UPDATE CASCADE ON DELETE CASCADE,
    PRIMARY KEY (group_no, username)
);
CREATE INDEX department_members_username_idx ON department_members (username);

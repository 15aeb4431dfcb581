-- The HR directory that HR staff edit: departments, employees and who belongs where.
CREATE TABLE departments (
    group_no        text PRIMARY KEY,
    display_name    text NOT NULL,
    parent_group_no text NULL REFERENCES departments (group_no) ON UPDATE CASCADE,
    active          boolean NOT NULL DEFAULT true
);
CREATE INDEX departments_parent_idx ON departments (parent_group_no);

CREATE TABLE employees (
    username      text PRIMARY KEY,
    email         text NOT NULL UNIQUE,
    nick_name     text NOT NULL,
    ad_no         text NULL,
    company       text NULL,
    phone1        text NULL,
    phone2        text NULL,
    extension_no  text NULL,
    gender        text NULL,
    password_hash text NULL,
    active        boolean NOT NULL DEFAULT true
);

CREATE TABLE department_members (
    group_no text NOT NULL REFERENCES departments (group_no) ON UPDATE CASCADE ON DELETE CASCADE,
    username text NOT NULL REFERENCES employees (username) ON UPDATE CASCADE ON DELETE CASCADE,
    PRIMARY KEY (group_no, username)
);
CREATE INDEX department_members_username_idx ON department_members (username);

-- The HR directory that HR staff edit: departments, employees and who belongs where.
-- Keys are varchar(255) because MySQL cannot index unbounded text.
CREATE TABLE departments (
    group_no        VARCHAR(255) NOT NULL PRIMARY KEY,
    display_name    VARCHAR(1024) NOT NULL,
    parent_group_no VARCHAR(255) NULL,
    active          BOOLEAN NOT NULL DEFAULT TRUE,
    CONSTRAINT departments_parent_fk FOREIGN KEY (parent_group_no)
        REFERENCES departments (group_no) ON UPDATE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE employees (
    username      VARCHAR(255) NOT NULL PRIMARY KEY,
    email         VARCHAR(255) NOT NULL,
    nick_name     VARCHAR(1024) NOT NULL,
    ad_no         VARCHAR(255) NULL,
    company       VARCHAR(1024) NULL,
    phone1        VARCHAR(255) NULL,
    phone2        VARCHAR(255) NULL,
    extension_no  VARCHAR(255) NULL,
    gender        VARCHAR(32) NULL,
    password_hash TEXT NULL,
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    CONSTRAINT employees_email_key UNIQUE (email)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE department_members (
    group_no VARCHAR(255) NOT NULL,
    username VARCHAR(255) NOT NULL,
    PRIMARY KEY (group_no, username),
    INDEX department_members_username_idx (username),
    CONSTRAINT department_members_group_fk FOREIGN KEY (group_no)
        REFERENCES departments (group_no) ON UPDATE CASCADE ON DELETE CASCADE,
    CONSTRAINT department_members_user_fk FOREIGN KEY (username)
        REFERENCES employees (username) ON UPDATE CASCADE ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

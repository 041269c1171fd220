-- Moodle's tables that usestats reads, in MySQL/MariaDB form, as Moodle's XMLDB generator builds
-- them: int(10) -> BIGINT, int(1..4) -> SMALLINT, int(5..9) -> INTEGER, char(n) -> VARCHAR(n),
-- text -> LONGTEXT, number(10,5) -> DECIMAL(10,5), InnoDB with utf8mb4 and Moodle's default
-- collation.
-- Index names are the generator's: prefix, four letters of each word of the table name, three of
-- each field, a counter when a name repeats, cut to 30 characters, then _ix or _uix; one index per
-- foreign key.
--
-- Every table follows Moodle 4.5 (lib/db/install.xml, mod/*/db/install.xml and the 4.1+
-- admin/tool/log/store/standard/db/install.xml), unchanged in 5.0 and 5.1 for what is here:
-- the columns usestats or the demo site use, the columns Moodle indexes, and exactly Moodle's
-- indexes. Columns nothing reads are left out. learningtimecheck is a contributed module; it
-- follows the shape of the core activity tables. One deviation: mnet_host.public_key has a default
-- (Moodle's has none) so that fixtures need not invent keys; nothing reads it.
-- Index names go through {ix:...}/{uix:...}, which adds the prefix and cuts to 30 characters as
-- Moodle does, so the names are Moodle's under any prefix.

CREATE TABLE {prefix}config (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(255) NOT NULL DEFAULT '',
    value LONGTEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE UNIQUE INDEX {uix:conf_nam} ON {prefix}config (name);

CREATE TABLE {prefix}mnet_host (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    deleted SMALLINT NOT NULL DEFAULT 0,
    wwwroot VARCHAR(255) NOT NULL DEFAULT '',
    ip_address VARCHAR(45) NOT NULL DEFAULT '',
    name VARCHAR(80) NOT NULL DEFAULT '',
    public_key LONGTEXT NOT NULL DEFAULT (''),
    public_key_expires BIGINT NOT NULL DEFAULT 0,
    transport SMALLINT NOT NULL DEFAULT 0,
    portno INTEGER NOT NULL DEFAULT 0,
    last_connect_time BIGINT NOT NULL DEFAULT 0,
    last_log_id BIGINT NOT NULL DEFAULT 0,
    applicationid BIGINT NOT NULL DEFAULT 1
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE INDEX {ix:mnethost_las} ON {prefix}mnet_host (last_log_id);
CREATE INDEX {ix:mnethost_app} ON {prefix}mnet_host (applicationid);

CREATE TABLE {prefix}user (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    auth VARCHAR(20) NOT NULL DEFAULT 'manual',
    confirmed SMALLINT NOT NULL DEFAULT 0,
    deleted SMALLINT NOT NULL DEFAULT 0,
    suspended SMALLINT NOT NULL DEFAULT 0,
    mnethostid BIGINT NOT NULL DEFAULT 0,
    username VARCHAR(100) NOT NULL DEFAULT '',
    password VARCHAR(255) NOT NULL DEFAULT '',
    idnumber VARCHAR(255) NOT NULL DEFAULT '',
    firstname VARCHAR(100) NOT NULL DEFAULT '',
    lastname VARCHAR(100) NOT NULL DEFAULT '',
    email VARCHAR(100) NOT NULL DEFAULT '',
    city VARCHAR(120) NOT NULL DEFAULT '',
    country VARCHAR(2) NOT NULL DEFAULT '',
    lang VARCHAR(30) NOT NULL DEFAULT 'en',
    timezone VARCHAR(100) NOT NULL DEFAULT '99',
    firstaccess BIGINT NOT NULL DEFAULT 0,
    lastaccess BIGINT NOT NULL DEFAULT 0,
    lastlogin BIGINT NOT NULL DEFAULT 0,
    currentlogin BIGINT NOT NULL DEFAULT 0,
    timecreated BIGINT NOT NULL DEFAULT 0,
    timemodified BIGINT NOT NULL DEFAULT 0,
    lastnamephonetic VARCHAR(255),
    firstnamephonetic VARCHAR(255),
    middlename VARCHAR(255),
    alternatename VARCHAR(255)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE UNIQUE INDEX {uix:user_mneuse} ON {prefix}user (mnethostid, username);
CREATE INDEX {ix:user_del} ON {prefix}user (deleted);
CREATE INDEX {ix:user_con} ON {prefix}user (confirmed);
CREATE INDEX {ix:user_fir} ON {prefix}user (firstname);
CREATE INDEX {ix:user_las} ON {prefix}user (lastname);
CREATE INDEX {ix:user_cit} ON {prefix}user (city);
CREATE INDEX {ix:user_cou} ON {prefix}user (country);
CREATE INDEX {ix:user_las2} ON {prefix}user (lastaccess);
CREATE INDEX {ix:user_ema} ON {prefix}user (email);
CREATE INDEX {ix:user_aut} ON {prefix}user (auth);
CREATE INDEX {ix:user_idn} ON {prefix}user (idnumber);
CREATE INDEX {ix:user_fir2} ON {prefix}user (firstnamephonetic);
CREATE INDEX {ix:user_las3} ON {prefix}user (lastnamephonetic);
CREATE INDEX {ix:user_mid} ON {prefix}user (middlename);
CREATE INDEX {ix:user_alt} ON {prefix}user (alternatename);

CREATE TABLE {prefix}course (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    category BIGINT NOT NULL DEFAULT 0,
    sortorder BIGINT NOT NULL DEFAULT 0,
    fullname VARCHAR(1333) NOT NULL DEFAULT '',
    shortname VARCHAR(255) NOT NULL DEFAULT '',
    idnumber VARCHAR(100) NOT NULL DEFAULT '',
    format VARCHAR(21) NOT NULL DEFAULT 'topics',
    startdate BIGINT NOT NULL DEFAULT 0,
    enddate BIGINT NOT NULL DEFAULT 0,
    visible SMALLINT NOT NULL DEFAULT 1,
    timecreated BIGINT NOT NULL DEFAULT 0,
    timemodified BIGINT NOT NULL DEFAULT 0,
    originalcourseid BIGINT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE INDEX {ix:cour_cat} ON {prefix}course (category);
CREATE INDEX {ix:cour_idn} ON {prefix}course (idnumber);
CREATE INDEX {ix:cour_sho} ON {prefix}course (shortname);
CREATE INDEX {ix:cour_sor} ON {prefix}course (sortorder);
CREATE INDEX {ix:cour_ori} ON {prefix}course (originalcourseid);

CREATE TABLE {prefix}course_sections (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    course BIGINT NOT NULL DEFAULT 0,
    section BIGINT NOT NULL DEFAULT 0,
    name VARCHAR(1333),
    sequence LONGTEXT,
    visible SMALLINT NOT NULL DEFAULT 1,
    component VARCHAR(100),
    itemid BIGINT,
    timemodified BIGINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE UNIQUE INDEX {uix:coursect_cousec} ON {prefix}course_sections (course, section);
CREATE INDEX {ix:coursect_comite} ON {prefix}course_sections (component, itemid);

CREATE TABLE {prefix}modules (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(20) NOT NULL DEFAULT '',
    visible SMALLINT NOT NULL DEFAULT 1
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE INDEX {ix:modu_nam} ON {prefix}modules (name);

CREATE TABLE {prefix}course_modules (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    course BIGINT NOT NULL DEFAULT 0,
    module BIGINT NOT NULL DEFAULT 0,
    instance BIGINT NOT NULL DEFAULT 0,
    section BIGINT NOT NULL DEFAULT 0,
    idnumber VARCHAR(100),
    added BIGINT NOT NULL DEFAULT 0,
    visible SMALLINT NOT NULL DEFAULT 1,
    groupingid BIGINT NOT NULL DEFAULT 0,
    deletioninprogress SMALLINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE INDEX {ix:courmodu_vis} ON {prefix}course_modules (visible);
CREATE INDEX {ix:courmodu_cou} ON {prefix}course_modules (course);
CREATE INDEX {ix:courmodu_mod} ON {prefix}course_modules (module);
CREATE INDEX {ix:courmodu_ins} ON {prefix}course_modules (instance);
CREATE INDEX {ix:courmodu_idncou} ON {prefix}course_modules (idnumber, course);
CREATE INDEX {ix:courmodu_gro} ON {prefix}course_modules (groupingid);

CREATE TABLE {prefix}context (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    contextlevel BIGINT NOT NULL DEFAULT 0,
    instanceid BIGINT NOT NULL DEFAULT 0,
    path VARCHAR(255),
    depth SMALLINT NOT NULL DEFAULT 0,
    locked SMALLINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE UNIQUE INDEX {uix:cont_conins} ON {prefix}context (contextlevel, instanceid);
CREATE INDEX {ix:cont_ins} ON {prefix}context (instanceid);
CREATE INDEX {ix:cont_pat} ON {prefix}context (path);

CREATE TABLE {prefix}enrol (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    enrol VARCHAR(20) NOT NULL DEFAULT '',
    status BIGINT NOT NULL DEFAULT 0,
    courseid BIGINT NOT NULL,
    sortorder BIGINT NOT NULL DEFAULT 0,
    roleid BIGINT DEFAULT 0,
    timecreated BIGINT NOT NULL DEFAULT 0,
    timemodified BIGINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE INDEX {ix:enro_enr} ON {prefix}enrol (enrol);
CREATE INDEX {ix:enro_cou} ON {prefix}enrol (courseid);
CREATE INDEX {ix:enro_rol} ON {prefix}enrol (roleid);

CREATE TABLE {prefix}user_enrolments (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    status BIGINT NOT NULL DEFAULT 0,
    enrolid BIGINT NOT NULL,
    userid BIGINT NOT NULL,
    timestart BIGINT NOT NULL DEFAULT 0,
    timeend BIGINT NOT NULL DEFAULT 2147483647,
    modifierid BIGINT NOT NULL DEFAULT 0,
    timecreated BIGINT NOT NULL DEFAULT 0,
    timemodified BIGINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE UNIQUE INDEX {uix:userenro_enruse} ON {prefix}user_enrolments (enrolid, userid);
CREATE INDEX {ix:userenro_enr} ON {prefix}user_enrolments (enrolid);
CREATE INDEX {ix:userenro_use} ON {prefix}user_enrolments (userid);
CREATE INDEX {ix:userenro_mod} ON {prefix}user_enrolments (modifierid);

CREATE TABLE {prefix}grade_items (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    courseid BIGINT,
    categoryid BIGINT,
    itemname VARCHAR(1333),
    itemtype VARCHAR(30) NOT NULL DEFAULT '',
    itemmodule VARCHAR(30),
    iteminstance BIGINT,
    idnumber VARCHAR(255),
    gradetype SMALLINT NOT NULL DEFAULT 1,
    grademax DECIMAL(10,5) NOT NULL DEFAULT 100,
    grademin DECIMAL(10,5) NOT NULL DEFAULT 0,
    scaleid BIGINT,
    outcomeid BIGINT,
    sortorder BIGINT NOT NULL DEFAULT 0,
    locked BIGINT NOT NULL DEFAULT 0,
    locktime BIGINT NOT NULL DEFAULT 0,
    needsupdate BIGINT NOT NULL DEFAULT 0,
    timecreated BIGINT,
    timemodified BIGINT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE INDEX {ix:graditem_locloc} ON {prefix}grade_items (locked, locktime);
CREATE INDEX {ix:graditem_itenee} ON {prefix}grade_items (itemtype, needsupdate);
CREATE INDEX {ix:graditem_gra} ON {prefix}grade_items (gradetype);
CREATE INDEX {ix:graditem_idncou} ON {prefix}grade_items (idnumber, courseid);
CREATE INDEX {ix:graditem_iteiteitecou} ON {prefix}grade_items (itemtype, itemmodule, iteminstance, courseid);
CREATE INDEX {ix:graditem_cou} ON {prefix}grade_items (courseid);
CREATE INDEX {ix:graditem_cat} ON {prefix}grade_items (categoryid);
CREATE INDEX {ix:graditem_sca} ON {prefix}grade_items (scaleid);
CREATE INDEX {ix:graditem_out} ON {prefix}grade_items (outcomeid);

CREATE TABLE {prefix}grade_grades (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    itemid BIGINT NOT NULL,
    userid BIGINT NOT NULL,
    rawgrade DECIMAL(10,5),
    rawgrademax DECIMAL(10,5) NOT NULL DEFAULT 100,
    rawgrademin DECIMAL(10,5) NOT NULL DEFAULT 0,
    rawscaleid BIGINT,
    usermodified BIGINT,
    finalgrade DECIMAL(10,5),
    locked BIGINT NOT NULL DEFAULT 0,
    locktime BIGINT NOT NULL DEFAULT 0,
    timecreated BIGINT,
    timemodified BIGINT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE UNIQUE INDEX {uix:gradgrad_useite} ON {prefix}grade_grades (userid, itemid);
CREATE INDEX {ix:gradgrad_locloc} ON {prefix}grade_grades (locked, locktime);
CREATE INDEX {ix:gradgrad_ite} ON {prefix}grade_grades (itemid);
CREATE INDEX {ix:gradgrad_use} ON {prefix}grade_grades (userid);
CREATE INDEX {ix:gradgrad_raw} ON {prefix}grade_grades (rawscaleid);
CREATE INDEX {ix:gradgrad_use2} ON {prefix}grade_grades (usermodified);

-- The log's indexes are in 0003_moodle_logstore_indexes, which the demo loader runs again after a
-- bulk load.
CREATE TABLE {prefix}logstore_standard_log (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    eventname VARCHAR(255) NOT NULL DEFAULT '',
    component VARCHAR(100) NOT NULL DEFAULT '',
    action VARCHAR(100) NOT NULL DEFAULT '',
    target VARCHAR(100) NOT NULL DEFAULT '',
    objecttable VARCHAR(50),
    objectid BIGINT,
    crud VARCHAR(1) NOT NULL DEFAULT '',
    edulevel SMALLINT NOT NULL,
    contextid BIGINT NOT NULL,
    contextlevel BIGINT NOT NULL,
    contextinstanceid BIGINT NOT NULL,
    userid BIGINT NOT NULL,
    courseid BIGINT,
    relateduserid BIGINT,
    anonymous SMALLINT NOT NULL DEFAULT 0,
    other LONGTEXT,
    timecreated BIGINT NOT NULL,
    origin VARCHAR(10),
    ip VARCHAR(45),
    realuserid BIGINT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Activity tables of the module types the demo site uses: usestats reads the instance name.
CREATE TABLE {prefix}assign (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, course BIGINT NOT NULL DEFAULT 0, name VARCHAR(1333) NOT NULL DEFAULT '', teamsubmissiongroupingid BIGINT NOT NULL DEFAULT 0) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE INDEX {ix:assi_cou} ON {prefix}assign (course);
CREATE INDEX {ix:assi_tea} ON {prefix}assign (teamsubmissiongroupingid);
CREATE TABLE {prefix}forum (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, course BIGINT NOT NULL DEFAULT 0, name VARCHAR(1333) NOT NULL DEFAULT '') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE INDEX {ix:foru_cou} ON {prefix}forum (course);
CREATE TABLE {prefix}learningtimecheck (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, course BIGINT NOT NULL DEFAULT 0, name VARCHAR(1333) NOT NULL DEFAULT '') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE INDEX {ix:lear_cou} ON {prefix}learningtimecheck (course);
CREATE TABLE {prefix}page (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, course BIGINT NOT NULL DEFAULT 0, name VARCHAR(1333) NOT NULL DEFAULT '') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE INDEX {ix:page_cou} ON {prefix}page (course);
CREATE TABLE {prefix}quiz (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, course BIGINT NOT NULL DEFAULT 0, name VARCHAR(1333) NOT NULL DEFAULT '') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE INDEX {ix:quiz_cou} ON {prefix}quiz (course);
CREATE TABLE {prefix}resource (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, course BIGINT NOT NULL DEFAULT 0, name VARCHAR(1333) NOT NULL DEFAULT '') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE INDEX {ix:reso_cou} ON {prefix}resource (course);
CREATE TABLE {prefix}url (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, course BIGINT NOT NULL DEFAULT 0, name VARCHAR(1333) NOT NULL DEFAULT '') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE INDEX {ix:url_cou} ON {prefix}url (course);

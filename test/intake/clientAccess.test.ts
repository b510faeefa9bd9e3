import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ClientAccess, LOOPBACK_RULE, type ClientRule } from '../../edge-agent/intake/clientAccess.ts';

const rule = (name: string, address: string): ClientRule => ({ name, address, acceptAnyAuth: false });

describe('ClientAccess', () => {
  const fax = rule('fax', '10.100.102.3');
  const helpdesk = rule('helpdesk', '10.100.102.0/28');
  const v6lan = rule('v6-lan', 'fd00:1::/64');
  const access = new ClientAccess([fax, helpdesk, v6lan]);

  test('a single address matches only itself', () => {
    assert.equal(access.match('10.100.102.3'), fax);
    assert.equal(access.match('10.100.103.3'), undefined);
  });

  test('a CIDR range matches every address inside it and none outside', () => {
    assert.equal(access.match('10.100.102.0'), helpdesk);
    assert.equal(access.match('10.100.102.15'), helpdesk);
    assert.equal(access.match('10.100.102.16'), undefined);
  });

  test('the first matching rule wins, so a device listed before its subnet keeps its own rule', () => {
    assert.equal(access.match('10.100.102.3'), fax);
    assert.equal(new ClientAccess([helpdesk, fax]).match('10.100.102.3'), helpdesk);
  });

  test('an IPv4-mapped IPv6 peer meets its IPv4 rules', () => {
    assert.equal(access.match('::ffff:10.0.0.5'), undefined);
    assert.equal(new ClientAccess([rule('lan', '10.0.0.0/24')]).match('::ffff:10.0.0.5')?.name, 'lan');
    assert.equal(access.match('::ffff:10.100.102.3'), fax);
    assert.equal(access.match('::ffff:10.100.102.9'), helpdesk);
    assert.equal(access.match('::ffff:a64:6603'), fax, 'hex spelling of ::ffff:10.100.102.3');
  });

  test('a rule written as an IPv4-mapped address or range matches the plain IPv4 peer', () => {
    assert.equal(new ClientAccess([rule('mapped', '::ffff:10.0.0.5')]).match('10.0.0.5')?.name, 'mapped');
    assert.equal(new ClientAccess([rule('mapped-net', '::ffff:10.0.0.0/120')]).match('10.0.0.77')?.name, 'mapped-net');
    assert.equal(new ClientAccess([rule('mapped-net', '::ffff:10.0.0.0/120')]).match('10.0.1.77'), undefined);
  });

  test('IPv6 rules match IPv6 peers and never IPv4 ones', () => {
    assert.equal(access.match('fd00:1::abcd'), v6lan);
    assert.equal(access.match('fd00:2::abcd'), undefined);
    assert.equal(new ClientAccess([rule('all-v6', '::/0')]).match('10.0.0.5'), undefined);
  });

  test('with no clients configured only loopback may relay', () => {
    const open = new ClientAccess([]);
    assert.equal(open.match('127.0.0.1'), LOOPBACK_RULE);
    assert.equal(open.match('127.0.0.2'), LOOPBACK_RULE);
    assert.equal(open.match('::1'), LOOPBACK_RULE);
    assert.equal(open.match('::ffff:127.0.0.1'), LOOPBACK_RULE);
    assert.equal(open.match('10.0.0.5'), undefined);
    assert.equal(open.match('::ffff:10.0.0.5'), undefined);
  });

  test('with clients configured loopback gets no pass of its own', () => {
    assert.equal(access.match('127.0.0.1'), undefined);
  });

  test('an address that is not an IP address is refused', () => {
    assert.equal(access.match(''), undefined);
    assert.equal(access.match('printer.local'), undefined);
    assert.equal(new ClientAccess([]).match('localhost'), undefined);
  });
});

/**
 * Microsoft 365 clouds: where SMTP, the token authority and Graph live in each. Values from
 * Microsoft's endpoint lists (see docs/microsoft-365-setup.md); each one stays overridable in
 * the `upstream` block.
 */
export const CLOUD_PRESETS = {
  worldwide: {
    host: 'smtp.office365.com',
    authority: 'https://login.microsoftonline.com',
    smtpScope: 'https://outlook.office365.com/.default',
    graphBaseUrl: 'https://graph.microsoft.com',
    graphScope: 'https://graph.microsoft.com/.default',
  },
  // GCC shares the worldwide endpoints.
  gcc: {
    host: 'smtp.office365.com',
    authority: 'https://login.microsoftonline.com',
    smtpScope: 'https://outlook.office365.com/.default',
    graphBaseUrl: 'https://graph.microsoft.com',
    graphScope: 'https://graph.microsoft.com/.default',
  },
  'gcc-high': {
    host: 'smtp.office365.us',
    authority: 'https://login.microsoftonline.us',
    smtpScope: 'https://outlook.office365.us/.default',
    graphBaseUrl: 'https://graph.microsoft.us',
    graphScope: 'https://graph.microsoft.us/.default',
  },
  dod: {
    host: 'smtp.office365.us',
    authority: 'https://login.microsoftonline.us',
    smtpScope: 'https://outlook.office365.us/.default',
    graphBaseUrl: 'https://dod-graph.microsoft.us',
    graphScope: 'https://dod-graph.microsoft.us/.default',
  },
  china: {
    host: 'smtp.partner.outlook.cn',
    authority: 'https://login.chinacloudapi.cn',
    smtpScope: 'https://partner.outlook.cn/.default',
    graphBaseUrl: 'https://microsoftgraph.chinacloudapi.cn',
    graphScope: 'https://microsoftgraph.chinacloudapi.cn/.default',
  },
  // High Volume Email: the worldwide identity platform, its own SMTP host (smtp-hve.office365.com is being retired).
  hve: {
    host: 'smtp.hve.mx.microsoft',
    authority: 'https://login.microsoftonline.com',
    smtpScope: 'https://outlook.office365.com/.default',
    graphBaseUrl: 'https://graph.microsoft.com',
    graphScope: 'https://graph.microsoft.com/.default',
  },
} as const;

export type CloudPresetName = keyof typeof CLOUD_PRESETS;
export const CLOUD_PRESET_NAMES = Object.keys(CLOUD_PRESETS) as [CloudPresetName, ...CloudPresetName[]];
